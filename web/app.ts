/**
 * Progressive enhancement of the server-rendered pages: copy buttons, and an
 * upload form that takes many files (picked or dropped), each sent on its
 * own with a real progress bar, a cancel button and its result. Without
 * JavaScript the same form posts one file the plain way.
 */

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

interface AddedRoot { Name: string, Hash: string, primary?: string | null, kind?: string, warnings?: string[], preview?: string | null }

const formatBytes = (bytes: number): string => (bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`)

function element<K extends keyof HTMLElementTagNameMap> (tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props)
  node.append(...children)
  return node
}

let rowCount = 0

function uploadOne (form: HTMLFormElement, rows: HTMLElement, file: File): void {
  const id = `upload-${++rowCount}`
  const progress = element('progress', { max: file.size, value: 0, id: `${id}-progress` })
  const status = element('p', { className: 'status' }, `Waiting… 0 of ${formatBytes(file.size)}`)
  const cancel = element('button', { type: 'button', className: 'secondary small' }, 'Cancel')
  const result = element('div', { className: 'result' })
  const row = element('li', { className: 'upload-row', id }, element('strong', {}, file.name), progress, status, cancel, result)
  row.dataset.state = 'uploading'
  rows.append(row)
  progress.setAttribute('aria-label', `Upload of ${file.name}`)

  const data = new FormData()
  for (const field of form.querySelectorAll<HTMLInputElement>('input[name]:not([type=file])')) data.append(field.name, field.value)
  data.append('file', file, file.name)

  const xhr = new XMLHttpRequest()
  xhr.open('POST', form.action)
  xhr.setRequestHeader('Accept', 'application/json')
  const csrf = form.querySelector<HTMLInputElement>('input[name=_csrf]')?.value
  if (csrf !== undefined) xhr.setRequestHeader('X-CSRF-Token', csrf)
  xhr.upload.addEventListener('progress', (event) => {
    if (!event.lengthComputable) return
    progress.max = event.total
    progress.value = event.loaded
    const percent = Math.round((event.loaded / event.total) * 100)
    row.dataset.percent = String(percent)
    status.textContent = `${percent} % — ${formatBytes(event.loaded)} of ${formatBytes(event.total)}`
    if (event.loaded === event.total) status.textContent = 'Checking and adding to IPFS…'
  })
  const finish = (state: string, ...content: Array<Node | string>): void => {
    row.dataset.state = state
    cancel.remove()
    result.replaceChildren(...content)
  }
  xhr.addEventListener('load', () => {
    let body: unknown
    try { body = JSON.parse(xhr.responseText) } catch { body = undefined }
    if (xhr.status === 200 && Array.isArray(body)) {
      progress.value = progress.max
      row.dataset.percent = '100'
      const root = body.at(-1) as AddedRoot
      const link = root.primary ?? `${new URL(`/ipfs/${root.Hash}/`, location.href).href}`
      const input = element('input', { value: link, readOnly: true, id: `${id}-link` })
      input.setAttribute('aria-label', `Link to ${file.name}`)
      status.textContent = `Uploaded: ${root.kind ?? 'asset'}`
      const parts: Array<Node | string> = [input, element('button', { type: 'button' }, 'Copy'), element('a', { className: 'button secondary', href: link }, 'Open')]
      ;(parts[1] as HTMLButtonElement).dataset.copy = `#${id}-link`
      if (typeof root.preview === 'string') parts.push(element('a', { className: 'button secondary', href: root.preview }, 'Preview in 3D'))
      const warnings = root.warnings ?? []
      if (warnings.length > 0) parts.push(element('ul', { className: 'warnings' }, ...warnings.map((w) => element('li', {}, w))))
      finish('done', ...parts)
    } else {
      const problem = body as { error?: string, details?: string[] } | undefined
      status.textContent = 'Not uploaded'
      finish('error', element('p', { className: 'error' }, problem?.error ?? `The server answered ${xhr.status}.`),
        ...((problem?.details ?? []).length > 0 ? [element('ul', {}, ...(problem?.details ?? []).map((d) => element('li', {}, d)))] : []))
    }
  })
  xhr.addEventListener('error', () => { status.textContent = 'Not uploaded'; finish('error', element('p', { className: 'error' }, 'The connection failed. Check your network and try again.')) })
  xhr.addEventListener('abort', () => { status.textContent = 'Cancelled'; finish('cancelled') })
  cancel.addEventListener('click', () => { xhr.abort() })
  xhr.send(data)
}

function enhanceUploadForm (form: HTMLFormElement): void {
  const rows = document.querySelector<HTMLElement>('[data-upload-rows]')
  const input = form.querySelector<HTMLInputElement>('input[type=file]')
  const zone = form.querySelector<HTMLElement>('[data-dropzone]')
  if (rows === null || input === null || zone === null) return
  input.multiple = true
  zone.querySelector<HTMLElement>('.dropzone-hint')?.removeAttribute('hidden')
  const send = (files: Iterable<File>): void => {
    if (!form.reportValidity()) return
    for (const file of files) uploadOne(form, rows, file)
    input.value = ''
  }
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    send(input.files ?? [])
  })
  for (const type of ['dragenter', 'dragover']) {
    zone.addEventListener(type, (event) => { event.preventDefault(); zone.classList.add('active') })
  }
  for (const type of ['dragleave', 'drop']) zone.addEventListener(type, () => { zone.classList.remove('active') })
  zone.addEventListener('drop', (event) => {
    event.preventDefault()
    input.required = false
    send(event.dataTransfer?.files ?? [])
    input.required = true
  })
}

const form = document.querySelector<HTMLFormElement>('form[data-upload]')
if (form !== null) enhanceUploadForm(form)
