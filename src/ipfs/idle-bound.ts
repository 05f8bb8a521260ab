import { ServiceUnavailableError } from '../errors.ts'

/**
 * How long a read from the IPFS node (Kubo's RPC API or its gateway) may
 * wait for it: a path's stat, a listing, a block, the next piece of a file;
 * and a pin, for Kubo's next word on it (see KuboBackend.pin). It holds
 * them, so moments; a stopped Kubo held gateway requests for as long as
 * their clients waited (behind nginx, up to its hour). The default of
 * IPFS_TIMEOUT_SECONDS.
 */
export const IPFS_IDLE_MS = 60_000

/** A 503: the node stopped answering mid-request. */
export const nodeStalled = (): ServiceUnavailableError => new ServiceUnavailableError('the IPFS node stopped answering; try again later')

/**
 * Yields what `source` yields, but fails with `stalled()` when an item takes
 * longer than `ms` to come once asked for: a node that stops answering
 * mid-stream. Time the consumer holds an item (a slow client) never counts.
 * `abort` is aborted with the error first, so that the request behind
 * `source` (given its signal) ends and the pending read with it.
 */
export async function * idleBounded<T> (source: AsyncIterable<T>, ms: number, stalled: () => Error, abort: AbortController): AsyncGenerator<T> {
  const items = source[Symbol.asyncIterator]()
  let finished = false
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => { const err = stalled(); abort.abort(err); reject(err) }, ms)
      })
      let next: IteratorResult<T>
      try {
        next = await Promise.race([items.next(), late])
      } finally {
        clearTimeout(timer)
      }
      if (next.done === true) { finished = true; return }
      yield next.value
    }
  } finally {
    // Left early (the consumer stopped, or a read failed): the request behind `source` ends, and `source` is closed
    // (not awaited: a pending read of its own ends with the abort).
    if (!finished) {
      abort.abort()
      void items.return?.()?.catch(() => {})
    }
  }
}

/**
 * Calls `onStall` once `ms` pass without a `touch()` while `waitingForNode()`
 * holds (time paused for a slow client never counts). `stop()` when done.
 */
export function idleWatch (ms: number, waitingForNode: () => boolean, onStall: () => void): { touch: () => void, stop: () => void } {
  let last = Date.now()
  const timer = setInterval(() => {
    if (!waitingForNode()) { last = Date.now(); return }
    if (Date.now() - last >= ms) { clearInterval(timer); onStall() }
  }, Math.max(10, Math.min(1000, ms / 4)))
  timer.unref()
  return { touch: () => { last = Date.now() }, stop: () => { clearInterval(timer) } }
}
