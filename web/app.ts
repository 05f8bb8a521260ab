/**
 * Progressive enhancement of the server-rendered pages: copy buttons, and an
 * upload form that takes many files (picked or dropped), each sent on its
 * own with a real progress bar, a cancel button and its result; files over
 * 32 MiB go resumably (tus), surviving a dropped connection or a reload.
 * A folder (dropped, or chosen with its own button) is sent as a zip bundle
 * made as it is sent (zip-writer.ts). Without JavaScript the same form posts
 * one file the plain way.
 */

import { droppedFolderFiles, pickedFolders } from './folder-files.ts'
import { forgetRows, forgetUnfinished, keepRows, restoreRows, type Owner } from './kept-rows.ts'
import { FolderReadError, zipFolder, ZipTooLargeError, type FolderFile, type FolderZip } from './zip-writer.ts'

// Signing out forgets the upload page's kept rows: the next person in this tab sees none of them.
document.querySelector('form[action="/signout"]')?.addEventListener('submit', () => { forgetRows() })

// Copy buttons work only with this script: the pages render them hidden, shown here.
for (const button of document.querySelectorAll<HTMLButtonElement>('button[data-copy][hidden]')) button.hidden = false

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

/** Above this a file goes through the resumable endpoint, when the server has one; smaller ones keep the one plain POST. */
const RESUMABLE_ABOVE = 32 * 1024 * 1024
/**
 * Bytes per PATCH. Chromium silently sends a request again, body and all,
 * when a kept-alive connection breaks before an answer; after a cut that
 * resent request carries a stale Upload-Offset and is refused (409) once
 * sent. Chunks bound what that costs.
 */
const CHUNK_BYTES = 8 * 1024 * 1024
/** Waits before each retry of a failed request (about two minutes in all); a connection that stays down waits for the browser to be online again. */
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10_000, 20_000, 30_000, 60_000]

/** The tus endpoint `GET /plugin_routes` names, asked once; null for a server without one. */
let resumableEndpoint: Promise<string | null> | undefined
function findResumableEndpoint (): Promise<string | null> {
  resumableEndpoint ??= fetch('/plugin_routes', { headers: { Accept: 'application/json' } })
    .then(async (res) => (res.ok ? await res.json() as { resumable_upload?: unknown } : {}))
    .then((routes) => (typeof routes.resumable_upload === 'string' ? new URL(routes.resumable_upload, location.href).href : null), () => null)
  return resumableEndpoint
}

/** One file's row: its progress bar and status, and where its result or error goes. */
interface UploadRow {
  id: string
  file: File
  /** A folder's zip: what it is made of (the files it reads from) and its resume key. */
  folder?: FolderZip
  row: HTMLLIElement
  progress: HTMLProgressElement
  status: HTMLParagraphElement
  cancel: HTMLButtonElement
  result: HTMLDivElement
}

/** A new row for `file`, at the end of `rows` or in place of `replacing` (a folder's row while it was read). */
function addRow (rows: HTMLElement, file: File, replacing?: HTMLElement, folder?: FolderZip): UploadRow {
  const id = `upload-${++rowCount}`
  const progress = element('progress', { max: file.size, value: 0, id: `${id}-progress` })
  const status = element('p', { className: 'status' }, `Waiting… 0 of ${formatBytes(file.size)}`)
  const cancel = element('button', { type: 'button', className: 'secondary small' }, 'Cancel')
  const result = element('div', { className: 'result' })
  const row = element('li', { className: 'upload-row', id }, element('strong', {}, file.name), progress, status, cancel, result)
  row.dataset.state = 'uploading'
  if (replacing === undefined) rows.append(row)
  else replacing.replaceWith(row)
  progress.setAttribute('aria-label', `Upload of ${file.name}`)
  return { id, file, row, progress, status, cancel, result, ...(folder === undefined ? {} : { folder }) }
}

function showProgress (ui: UploadRow, loaded: number, total: number): void {
  ui.progress.max = total
  ui.progress.value = loaded
  const percent = total === 0 ? 100 : Math.round((loaded / total) * 100)
  ui.row.dataset.percent = String(percent)
  ui.status.textContent = `${percent} % — ${formatBytes(loaded)} of ${formatBytes(total)}`
  if (loaded === total) ui.status.textContent = 'Checking and adding to IPFS…'
}

function finish (ui: UploadRow, state: string, ...content: Array<Node | string>): void {
  ui.row.dataset.state = state
  ui.cancel.remove()
  ui.result.replaceChildren(...content)
  keep()
}

/** Keeps the page's finished rows for Back and reloads (kept-rows.ts); set up with the form. */
let keep: (leaving?: boolean) => void = () => {}

/** Who the form uploads as: the signed-in identity, else the name typed in the form. */
function uploader (form: HTMLFormElement): Owner {
  const signedInAs = form.dataset.signedInAs ?? ''
  return signedInAs !== '' ? { name: signedInAs, signedIn: true } : { name: form.querySelector<HTMLInputElement>('input[name=username]')?.value ?? '', signedIn: false }
}

/** What the server answers an upload (the same for the plain and the resumable way): its link, buttons and warnings, or its error. */
function showAnswer (ui: UploadRow, status: number, text: string): void {
  let body: unknown
  try { body = JSON.parse(text) } catch { body = undefined }
  if (status === 200 && Array.isArray(body)) {
    ui.progress.value = ui.progress.max
    ui.row.dataset.percent = '100'
    const root = body.at(-1) as AddedRoot
    const link = root.primary ?? `${new URL(`/ipfs/${root.Hash}/`, location.href).href}`
    const input = element('input', { value: link, readOnly: true, id: `${ui.id}-link` })
    input.setAttribute('aria-label', `Link to ${ui.file.name}`)
    ui.status.textContent = `Uploaded: ${root.kind ?? 'asset'}`
    const parts: Array<Node | string> = [input, element('button', { type: 'button' }, 'Copy'), element('a', { className: 'button secondary', href: link }, 'Open')]
    ;(parts[1] as HTMLButtonElement).dataset.copy = `#${ui.id}-link`
    if (typeof root.preview === 'string') parts.push(element('a', { className: 'button secondary', href: root.preview }, 'Preview in 3D'))
    const warnings = root.warnings ?? []
    if (warnings.length > 0) parts.push(element('ul', { className: 'warnings' }, ...warnings.map((w) => element('li', {}, w))))
    finish(ui, 'done', ...parts)
  } else {
    const problem = body as { error?: string, details?: string[] } | undefined
    ui.status.textContent = 'Not uploaded'
    finish(ui, 'error', element('p', { className: 'error' }, problem?.error ?? `The server answered ${status}.`),
      ...((problem?.details ?? []).length > 0 ? [element('ul', {}, ...(problem?.details ?? []).map((d) => element('li', {}, d)))] : []))
  }
}

const showConnectionFailed = (ui: UploadRow): void => {
  ui.status.textContent = 'Not uploaded'
  finish(ui, 'error', element('p', { className: 'error' }, 'The connection failed. Check your network and try again.'))
}

/**
 * Whether a file the upload reads from can no longer be read as the browser
 * took it: saved over, moved or deleted since. Chromium then fails the
 * request as it would a dropped connection; one byte of each tells them apart.
 */
async function sourcesChanged (ui: UploadRow): Promise<boolean> {
  const sources = ui.folder?.sources ?? [ui.file]
  for (let i = 0; i < sources.length; i += 512) {
    const unreadable = await Promise.all(sources.slice(i, i + 512).map(async (file) => file.slice(0, 1).arrayBuffer().then(() => false, () => true)))
    if (unreadable.includes(true)) return true
  }
  return false
}

/** What changed, in the row's words: the file, or one of the folder's. */
const whatChanged = (ui: UploadRow): string => (ui.folder === undefined ? 'The file' : 'A file in the folder')

const showChanged = (ui: UploadRow): void => {
  ui.status.textContent = 'Not uploaded'
  finish(ui, 'error', element('p', { className: 'error' }, `${whatChanged(ui)} changed (saved over, moved or deleted) while it was sent. ${ui.folder === undefined ? 'Pick or drop it again.' : 'Choose or drop the folder again.'}`))
}

/**
 * The server's answer, once the files it was made from are checked: one
 * saved over while it was read may have gone up partly in each version
 * (Chromium fails the request only when it opens a part after the change).
 * A refusal (a folder's CRC no longer matching) is then said as the change
 * it is; an accepted upload gets a warning above its link.
 */
function answer (ui: UploadRow, status: number, text: string): void {
  void sourcesChanged(ui).then((changed) => {
    if (!changed) { showAnswer(ui, status, text); return }
    if (status !== 200) { showChanged(ui); return }
    showAnswer(ui, status, text)
    ui.result.prepend(element('p', { className: 'error' }, `${whatChanged(ui)} changed while it was sent: this upload may hold parts of both versions. Upload it again.`))
    keep()
  })
}

/** After a failed request: the file changed, or the connection failed. */
const showFailure = (ui: UploadRow): void => {
  void sourcesChanged(ui).then((changed) => { if (changed) showChanged(ui); else showConnectionFailed(ui) })
}

/** The form's credentials: its token field (the bearer), else the session with the form's CSRF token. */
function credentialHeaders (form: HTMLFormElement): Record<string, string> {
  const token = form.querySelector<HTMLInputElement>('input[name=token]')?.value ?? ''
  if (token !== '') return { Authorization: `Bearer ${token}` }
  const csrf = form.querySelector<HTMLInputElement>('input[name=_csrf]')?.value
  return csrf === undefined ? {} : { 'X-CSRF-Token': csrf }
}

/** The plain way: one multipart POST, as the form sends it without JavaScript. */
function uploadPlain (form: HTMLFormElement, ui: UploadRow): void {
  const data = new FormData()
  for (const field of form.querySelectorAll<HTMLInputElement>('input[name]:not([type=file])')) data.append(field.name, field.value)
  data.append('file', ui.file, ui.file.name)

  const xhr = new XMLHttpRequest()
  xhr.open('POST', form.action)
  xhr.setRequestHeader('Accept', 'application/json')
  const csrf = form.querySelector<HTMLInputElement>('input[name=_csrf]')?.value
  if (csrf !== undefined) xhr.setRequestHeader('X-CSRF-Token', csrf)
  xhr.upload.addEventListener('progress', (event) => { if (event.lengthComputable) showProgress(ui, event.loaded, event.total) })
  xhr.addEventListener('load', () => { answer(ui, xhr.status, xhr.responseText) })
  xhr.addEventListener('error', () => { showFailure(ui) })
  xhr.addEventListener('abort', () => { ui.status.textContent = 'Cancelled'; finish(ui, 'cancelled') })
  ui.cancel.addEventListener('click', () => { xhr.abort() })
  xhr.send(data)
}

/**
 * Holds the lock named `name` across this browser's tabs until the function
 * it answers is called; null when another tab or upload holds it. Where the
 * browser has no Web Locks, nothing is held.
 */
async function tryLock (name: string): Promise<(() => void) | null> {
  if (!('locks' in navigator)) return () => {}
  return new Promise((resolve) => {
    navigator.locks.request(name, { ifAvailable: true }, async (lock) => {
      if (lock === null) { resolve(null); return }
      await new Promise<void>((release) => { resolve(release) })
    }).catch(() => { resolve(() => {}) })
  })
}

/**
 * The resumable way (tus, with tus-js-client): a dropped connection is
 * retried from the server's offset; the upload's URL is kept in
 * localStorage by the file's name, size and date, so picking the same file
 * again after a reload continues it. Cancel deletes what the server has.
 */
async function uploadResumable (form: HTMLFormElement, ui: UploadRow, endpoint: string): Promise<void> {
  const { Upload } = await import('tus-js-client')
  const headers = credentialHeaders(form)
  let cancelled = false
  // One sender per upload: the same file sent from two tabs (or twice in one) resumed the same upload from both, each
  // request stopping the other's (hundreds of 409s, twice the time; found by review). The one that holds an upload's
  // lock sends it; another starts an upload of its own.
  let release: (() => void) | null = null
  const unlock = (): void => { release?.(); release = null }
  // A file changed under the upload can never be sent: the server's part is removed and the row says so.
  let checking = false
  const stopIfChanged = async (): Promise<boolean> => {
    const changed = await sourcesChanged(ui)
    if (changed && !cancelled) {
      cancelled = true
      upload.abort(true).catch(() => {}).finally(unlock)
      showChanged(ui)
    }
    return changed
  }
  const folder = ui.folder
  const upload = new Upload(ui.file, {
    endpoint,
    headers: { ...headers, Accept: 'application/json' },
    metadata: { filename: ui.file.name },
    // A folder's zip is known by what it holds (tus-js-client's default, name, size and date, would resume a folder
    // with a file renamed or rewritten at the same size onto the old one's bytes).
    ...(folder === undefined ? {} : { fingerprint: async (file, options) => Promise.resolve(`heimdall-folder-${file.name}-${folder.fingerprint}-${options.endpoint ?? ''}`) }),
    chunkSize: CHUNK_BYTES,
    retryDelays: RETRY_DELAYS,
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    onProgress: (sent, total) => { showProgress(ui, sent, total) },
    onUploadUrlAvailable: () => {
      if (release === null && upload.url !== null) void tryLock(`heimdall-upload:${upload.url}`).then((held) => { release = held })
    },
    // Unlike tus-js-client's default, also while the browser says it is offline: the delays run on, and `online` below restarts it.
    onShouldRetry: (err) => {
      const status = err.originalResponse?.getStatus() ?? 0
      const retry = !cancelled && (status === 0 || status >= 500 || status === 409 || status === 423 || status === 429)
      if (retry) ui.status.textContent = `Connection lost at ${ui.row.dataset.percent ?? '0'} % — resuming…`
      if (status === 0 && !checking) { checking = true; void stopIfChanged().finally(() => { checking = false }) }
      return retry
    },
    onSuccess: ({ lastResponse }) => {
      unlock()
      const text = lastResponse.getBody() ?? ''
      if (lastResponse.getStatus() === 200 && text.trim().startsWith('[')) { answer(ui, 200, text); return }
      // Found complete when resumed (the last answer was lost): the upload's URL answers the same.
      fetch(upload.url ?? '', { headers: { ...headers, Accept: 'application/json' } })
        .then(async (res) => { answer(ui, res.status, await res.text()) }, () => { showConnectionFailed(ui) })
    },
    onError: (err) => {
      if (cancelled) return
      const response = 'originalResponse' in err ? err.originalResponse : null
      if (response !== null && response !== undefined && response.getStatus() !== 0) { unlock(); answer(ui, response.getStatus(), response.getBody() ?? ''); return }
      void stopIfChanged().then((changed) => { if (!changed) waitToResume() })
    }
  })
  // Still down after every retry: offline, it goes on by itself once the browser is online again; else on a click.
  function waitToResume (): void {
    if (cancelled) return
    ui.row.dataset.state = 'waiting'
    const resume = element('button', { type: 'button', className: 'small' }, 'Resume')
    const go = (): void => {
      if (cancelled || ui.row.dataset.state !== 'waiting') return
      ui.row.dataset.state = 'uploading'
      resume.remove()
      ui.status.textContent = 'Resuming where it stopped…'
      void stopIfChanged().then((changed) => { if (!changed && !cancelled) upload.start() })
    }
    resume.addEventListener('click', go)
    window.addEventListener('online', go, { once: true })
    ui.status.textContent = `Connection lost at ${ui.row.dataset.percent ?? '0'} %. ${navigator.onLine ? 'Resume when the server is back:' : 'It resumes when the connection is back.'}`
    ui.status.after(resume)
  }
  ui.cancel.addEventListener('click', () => {
    cancelled = true
    upload.abort(true).catch(() => { /* gone already, or the network is: the server expires it */ }).finally(unlock)
    ui.status.textContent = 'Cancelled'
    finish(ui, 'cancelled')
  })
  const previous = await upload.findPreviousUploads()
  for (const last of previous.sort((a, b) => b.creationTime.localeCompare(a.creationTime))) {
    if (last.uploadUrl === null) continue
    release = await tryLock(`heimdall-upload:${last.uploadUrl}`)
    if (release === null) continue // being sent right now, from another tab or row
    ui.status.textContent = 'Resuming where it stopped…'
    upload.resumeFromPreviousUpload(last)
    break
  }
  upload.start()
}

function uploadOne (form: HTMLFormElement, rows: HTMLElement, file: File, replacing?: HTMLElement, folder?: FolderZip): void {
  // Sent again: the word that it was left unfinished goes (a big file goes on where it stopped).
  forgetUnfinished(rows, [file.name])
  const ui = addRow(rows, file, replacing, folder)
  if (file.size <= RESUMABLE_ABOVE) { uploadPlain(form, ui); return }
  findResumableEndpoint()
    .then(async (endpoint) => { if (endpoint === null) uploadPlain(form, ui); else await uploadResumable(form, ui, endpoint) })
    .catch(() => { showConnectionFailed(ui) })
}

/** Lists a folder's files (a drop's directory entry, or a picker's choice), saying how many so far. */
type FolderLister = (onListed: (count: number) => void, signal: AbortSignal) => Promise<FolderFile[]>

/** Why a folder was not sent, in the creator's words. */
function folderProblem (name: string, err: unknown): string {
  if (err instanceof ZipTooLargeError) return `"${name}" would be ${formatBytes(err.size)} as a zip; at most ${formatBytes(err.maxBytes)} can be uploaded.`
  if (err instanceof FolderReadError) return `${err.path} in "${name}" could not be read: it was moved, deleted or changed while the folder was read, or the browser cannot open a file of that name. Check it and choose or drop the folder again.`
  return `The folder "${name}" could not be read${err instanceof Error && err.message !== '' ? ` (${err.message})` : ''}. Check it and choose or drop it again.`
}

/**
 * A folder's row while its files are listed and read (each once, for the
 * zip's checksums; too big a zip is refused before), then its zip's upload
 * in the same place: `<name>.zip`, checked and imported as any bundle, its
 * folders kept.
 */
function uploadFolder (form: HTMLFormElement, rows: HTMLElement, name: string, list: FolderLister): void {
  // Sent again: the word that it was left unfinished (while it was read, or sent as its zip) goes.
  forgetUnfinished(rows, [`${name}/`, `${name}.zip`])
  const progress = element('progress', { max: 1 })
  progress.removeAttribute('value') // indeterminate while listing
  const status = element('p', { className: 'status' }, 'Listing the folder…')
  const cancel = element('button', { type: 'button', className: 'secondary small' }, 'Cancel')
  const row = element('li', { className: 'upload-row' }, element('strong', {}, `${name}/`), progress, status, cancel)
  progress.setAttribute('aria-label', `Reading the folder ${name}`)
  row.dataset.state = 'reading'
  rows.append(row)
  const reading = new AbortController()
  cancel.addEventListener('click', () => { reading.abort() })
  const end = (state: string, message?: string): void => {
    row.dataset.state = state
    status.textContent = state === 'cancelled' ? 'Cancelled' : 'Not uploaded'
    progress.remove()
    cancel.remove()
    if (message !== undefined) row.append(element('div', { className: 'result' }, element('p', { className: 'error' }, message)))
    keep()
  }
  const maxBytes = Number(form.dataset.maxBytes ?? Number.NaN)
  list((count) => { status.textContent = `Listing the folder… ${count} ${count === 1 ? 'file' : 'files'}` }, reading.signal).then(async (files) => {
    reading.signal.throwIfAborted()
    if (files.length === 0) { end('error', `"${name}" has no files to send (hidden files and folders are left out).`); return }
    const what = `${files.length} ${files.length === 1 ? 'file' : 'files'}`
    status.textContent = `Reading ${what}…`
    const zip = await zipFolder(name, files, {
      signal: reading.signal,
      ...(Number.isFinite(maxBytes) ? { maxBytes } : {}),
      onRead: (read, total) => {
        progress.max = total
        progress.value = read
        status.textContent = `Reading ${what} — ${formatBytes(read)} of ${formatBytes(total)}`
      }
    })
    reading.signal.throwIfAborted()
    uploadOne(form, rows, zip.file, row, zip)
  }).catch((err: unknown) => {
    if (reading.signal.aborted) end('cancelled')
    else end('error', folderProblem(name, err))
  })
}

function enhanceUploadForm (form: HTMLFormElement): void {
  const rows = document.querySelector<HTMLElement>('[data-upload-rows]')
  const input = form.querySelector<HTMLInputElement>('input[type=file]')
  const zone = form.querySelector<HTMLElement>('[data-dropzone]')
  if (rows === null || input === null || zone === null) return
  rowCount = restoreRows(rows, uploader(form))
  keep = (leaving = false) => { keepRows(rows, uploader(form), leaving) }
  // Left while uploads are still being sent: they are said as not finished when the page is come back to.
  window.addEventListener('pagehide', () => { keep(true) })
  input.multiple = true
  zone.querySelector<HTMLElement>('.dropzone-hint')?.removeAttribute('hidden')
  // The credentials must be there; the file field need not be, for a drop or a folder.
  const credentialsValid = (): boolean => {
    input.required = false
    try { return form.reportValidity() } finally { input.required = true }
  }
  const send = (files: Iterable<File>, folders: Iterable<[string, FolderLister]> = []): void => {
    for (const file of files) uploadOne(form, rows, file)
    for (const [name, list] of folders) uploadFolder(form, rows, name, list)
    input.value = ''
  }
  const folderInput = element('input', { type: 'file', multiple: true, hidden: true, webkitdirectory: true })
  const chooseFolder = element('button', { type: 'button', className: 'secondary small' }, 'Choose a folder…')
  chooseFolder.addEventListener('click', () => { if (credentialsValid()) folderInput.click() })
  folderInput.addEventListener('change', () => {
    const chosen = [...folderInput.files ?? []]
    folderInput.value = ''
    if (chosen.length === 0) {
      // An empty folder: the browser gives no file, and so not its name.
      const row = element('li', { className: 'upload-row' }, element('p', { className: 'status' }, 'Not uploaded'), element('div', { className: 'result' }, element('p', { className: 'error' }, 'The folder you chose has no files to send (hidden files and folders are left out).')))
      row.dataset.state = 'error'
      rows.append(row)
      keep()
      return
    }
    // Files without a folder (a browser that picks files, not folders, as on phones) go as files.
    const { folders, loose } = pickedFolders(chosen)
    send(loose, [...folders].map(([name, files]) => [name, async () => Promise.resolve(files)]))
  })
  zone.querySelector<HTMLElement>('.dropzone-hint')?.append(' ', chooseFolder, folderInput)
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    if (form.reportValidity()) send(input.files ?? [])
  })
  for (const type of ['dragenter', 'dragover']) {
    zone.addEventListener(type, (event) => { event.preventDefault(); zone.classList.add('active') })
  }
  for (const type of ['dragleave', 'drop']) zone.addEventListener(type, () => { zone.classList.remove('active') })
  zone.addEventListener('drop', (event) => {
    event.preventDefault()
    if (!credentialsValid()) return
    const { files, folders } = dropped(event.dataTransfer)
    send(files, folders)
  })
}

/**
 * The files and folders of a drop. A dropped folder also comes as a file
 * the browser will not read (sent, it failed as "check your network"): it
 * is left out of the files, and its tree is read from its entry, which
 * must be taken while the drop event lasts.
 */
function dropped (transfer: DataTransfer | null): { files: File[], folders: Array<[string, FolderLister]> } {
  if (transfer === null) return { files: [], folders: [] }
  const folders: Array<[string, FolderLister]> = []
  for (const item of transfer.items) {
    const entry = item.kind === 'file' ? item.webkitGetAsEntry() : null
    if (entry?.isDirectory === true) folders.push([entry.name, async (onListed, signal) => droppedFolderFiles(entry as FileSystemDirectoryEntry, onListed, signal)])
  }
  const names = new Set(folders.map(([name]) => name))
  return { files: [...transfer.files].filter((file) => !names.has(file.name) || file.type !== ''), folders }
}

const form = document.querySelector<HTMLFormElement>('form[data-upload]')
if (form !== null) enhanceUploadForm(form)
