import { once } from 'node:events'
import type { Response } from 'express'

export async function * map<T, U> (source: AsyncIterable<T>, fn: (item: T) => U): AsyncIterable<U> {
  for await (const item of source) yield fn(item)
}

/**
 * Writes `{ ...head, [key]: [ ...items ] }` as the items arrive, honouring
 * backpressure: a long list never sits in memory as one string. Stops
 * reading the source when the client goes away.
 */
export async function streamJsonList (res: Response, head: Record<string, unknown>, key: string, items: AsyncIterable<unknown>): Promise<void> {
  res.type('application/json')
  const opening = JSON.stringify({ ...head, [key]: [] })
  let first = true
  res.write(`${opening.slice(0, -2)}`)
  for await (const item of items) {
    if (res.destroyed) return
    const ok = res.write(`${first ? '' : ','}${JSON.stringify(item)}`)
    first = false
    if (!ok) await Promise.race([once(res, 'drain'), once(res, 'close')])
  }
  res.end(']}')
}
