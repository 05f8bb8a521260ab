// Copy buttons: <button data-copy="#selector"> copies that field's value.
document.addEventListener('click', (event) => {
  const button = event.target instanceof Element ? event.target.closest<HTMLButtonElement>('[data-copy]') : null
  if (button === null) return
  const field = document.querySelector<HTMLInputElement>(button.dataset.copy ?? '')
  if (field === null) return
  navigator.clipboard.writeText(field.value).then(
    () => { button.textContent = 'Copied' },
    () => { field.select(); button.textContent = 'Press Ctrl+C' }
  )
})
