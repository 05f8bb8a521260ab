// Copy buttons: <button data-copy="#selector"> copies that input's value.
document.addEventListener('click', (event) => {
  const button = event.target instanceof Element ? event.target.closest('[data-copy]') : null
  if (button === null) return
  const input = document.querySelector(button.getAttribute('data-copy'))
  if (input === null) return
  navigator.clipboard.writeText(input.value).then(
    () => { button.textContent = 'Copied' },
    () => { input.select(); button.textContent = 'Press Ctrl+C' }
  )
})
