/**
 * The upload page's finished rows, kept for the tab so that Back or a
 * reload after opening a result (Open, Preview in 3D) shows them again
 * where the browser did not keep the page itself. One set per visit of the
 * page (per history entry: Back to an earlier visit shows that visit's
 * rows, a new visit starts empty), as the rows' markup with long lists cut
 * (a refusal's details), for the signed-in person who uploaded them:
 * another person's rows are never shown (signed out, or signed in as someone
 * else), signing out forgets them all, and uploads sent with the form's
 * username and token (no one signed in, whom the page could tell apart) are
 * not kept. Nothing secret is in them: links, names, warnings. The pages
 * themselves are `no-store`, so the browser's back/forward cache does not
 * show a page of the person who signed out either.
 */

interface Kept { owner: string, rows: string[] }
export interface Owner { name: string, signedIn: boolean }

const PREFIX = 'heimdall:upload-rows:'
const VISITS_KEY = 'heimdall:upload-visits'
const VISITS_KEPT = 10
const ROWS_KEPT = 100
const LIST_ITEMS = 50
/** What one visit's rows may take in the tab's storage (a few MB in all browsers). */
const VISIT_BYTES = 512 * 1024
const FINISHED = new Set(['done', 'error', 'cancelled'])

let visit: string | undefined
/** Signed out: nothing is kept any more by this page (its pagehide would keep the rows again). */
let forgotten = false

function store (): Storage | undefined {
  try { return sessionStorage } catch { return undefined }
}

/** The row as kept: its markup, each list past LIST_ITEMS items cut to them and how many more. */
function kept (row: Element): string {
  const copy = row.cloneNode(true) as Element
  // A field's value set from script is no attribute: the markup would come back empty.
  for (const input of copy.querySelectorAll('input')) input.setAttribute('value', input.value)
  for (const list of copy.querySelectorAll('ul, ol')) {
    const items = [...list.children]
    if (items.length <= LIST_ITEMS) continue
    for (const item of items.slice(LIST_ITEMS)) item.remove()
    const more = document.createElement('li')
    more.textContent = `and ${items.length - LIST_ITEMS} more`
    list.append(more)
  }
  return copy.outerHTML
}

/** A row still being sent when the page was left, in its place: said as not finished, until the same file is sent again. */
function notFinished (name: string): string {
  const row = document.createElement('li')
  row.className = 'upload-row'
  row.dataset.state = 'error'
  row.dataset.unfinished = name
  const title = document.createElement('strong')
  title.textContent = name
  const status = document.createElement('p')
  status.className = 'status'
  status.textContent = 'Not finished'
  const result = document.createElement('div')
  result.className = 'result'
  const error = document.createElement('p')
  error.className = 'error'
  error.textContent = 'It was still being sent when you left this page. Pick it again: a file over 32 MiB goes on where it stopped.'
  result.append(error)
  row.append(title, status, result)
  return row.outerHTML
}

/** Removes the rows that said one of `names` was left unfinished: it is being sent again. */
export function forgetUnfinished (rows: Element, names: readonly string[]): void {
  for (const row of rows.querySelectorAll<HTMLElement>('[data-unfinished]')) if (names.includes(row.dataset.unfinished ?? '')) row.remove()
}

/** Keeps the finished rows of `rows` (with a word for those still being sent, when `leaving`). */
export function keepRows (rows: Element, owner: Owner, leaving = false): void {
  const storage = store()
  if (storage === undefined || visit === undefined || forgotten || !owner.signedIn) return
  let list = [...rows.children].flatMap((row) => {
    if (row instanceof HTMLElement && FINISHED.has(row.dataset.state ?? '')) return [kept(row)]
    return leaving ? [notFinished(row.querySelector('strong')?.textContent ?? 'An upload')] : []
  }).slice(-ROWS_KEPT)
  // The oldest go first past VISIT_BYTES.
  let bytes = list.reduce((sum, html) => sum + html.length, 0)
  let first = 0
  while (first < list.length && bytes > VISIT_BYTES) bytes -= (list[first++] as string).length
  list = list.slice(first)
  try {
    storage.setItem(PREFIX + visit, JSON.stringify({ owner: owner.name, rows: list } satisfies Kept))
  } catch { /* full or off: the rows are only not shown again */ }
}

/**
 * Shows the rows this visit kept, when the page is come back to (Back,
 * Forward, a reload) and they are `owner`'s; a new visit gets its own set.
 * Answers the highest row number shown, for new rows' ids to follow.
 */
export function restoreRows (rows: Element, owner: Owner): number {
  const storage = store()
  if (storage === undefined) return 0
  const navigation = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming | undefined
  const state = history.state as { heimdallUploads?: string } | null
  if (navigation?.type === 'navigate' || typeof state?.heimdallUploads !== 'string') {
    visit = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`
    history.replaceState({ ...(state ?? {}), heimdallUploads: visit }, '')
    remember(storage, visit)
    return 0
  }
  visit = state.heimdallUploads
  let saved: Kept | undefined
  try { saved = JSON.parse(storage.getItem(PREFIX + visit) ?? 'null') as Kept | undefined } catch { saved = undefined }
  if (saved === null || saved === undefined || !Array.isArray(saved.rows)) return 0
  // Someone else's (signed in as another, or signed out since): forgotten, not shown.
  if (!owner.signedIn || saved.owner !== owner.name) {
    storage.removeItem(PREFIX + visit)
    return 0
  }
  for (const html of saved.rows) rows.insertAdjacentHTML('beforeend', html)
  let highest = 0
  for (const row of rows.querySelectorAll<HTMLElement>('[id^="upload-"]')) highest = Math.max(highest, Number(/^upload-(\d+)$/.exec(row.id)?.[1] ?? 0))
  return highest
}

/** Notes a new visit, forgetting the rows of the oldest beyond VISITS_KEPT. */
function remember (storage: Storage, id: string): void {
  try {
    const visits = [...(JSON.parse(storage.getItem(VISITS_KEY) ?? '[]') as string[]), id]
    for (const old of visits.splice(0, Math.max(0, visits.length - VISITS_KEPT))) storage.removeItem(PREFIX + old)
    storage.setItem(VISITS_KEY, JSON.stringify(visits))
  } catch { /* full or off */ }
}

/** Forgets every visit's rows (signing out). */
export function forgetRows (): void {
  forgotten = true
  const storage = store()
  if (storage === undefined) return
  for (const key of Object.keys(storage)) if (key.startsWith(PREFIX) || key === VISITS_KEY) storage.removeItem(key)
}
