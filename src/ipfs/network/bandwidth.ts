/**
 * Bandwidth caps for the libp2p connections: token buckets, one for all
 * connections together and one per remote host, each way. A connection that
 * has spent its budget stops sending (its write buffer waits, as it does for
 * a full socket) and stops reading (the socket is paused, so TCP slows the
 * sender down) until the buckets have refilled.
 */
export class TokenBucket {
  readonly rate: number
  readonly #burst: number
  #tokens: number
  #at = performance.now()

  /** `rate` bytes per second; up to one second of it may go at once. */
  constructor (rate: number) {
    this.rate = rate
    this.#burst = Math.max(rate, 16 * 1024)
    this.#tokens = this.#burst
  }

  #refill (): void {
    const now = performance.now()
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.rate / 1000)
    this.#at = now
  }

  /** Spends `bytes` (the balance may go below zero: the debt is waited out). */
  take (bytes: number): void {
    this.#refill()
    this.#tokens -= bytes
  }

  /** Milliseconds until the balance is back to zero; 0 when it is not in debt. */
  waitMs (): number {
    this.#refill()
    return this.#tokens >= 0 ? 0 : Math.ceil(-this.#tokens * 1000 / this.rate)
  }
}

export interface BandwidthLimits {
  /** Bytes per second each way for all connections together; 0 = none. */
  total: number
  /** Bytes per second each way per remote host; 0 = none. */
  perHost: number
}

/** A connection as libp2p's TCP transport makes it (@libp2p/utils' AbstractMultiaddrConnection), the parts a throttle touches. */
interface ThrottledConnection {
  remoteAddr: { toString: () => string }
  sendData: (data: { byteLength: number }) => { sentBytes: number, canSendMore: boolean }
  onData: (data: { byteLength: number }) => void
  sendPause: () => void
  sendResume: () => void
  safeDispatchEvent: (type: 'drain') => boolean
  addEventListener: (type: 'close', listener: () => void, options?: { once?: boolean }) => void
}

interface Direction { total?: TokenBucket, hosts: Map<string, { bucket: TokenBucket, connections: number }> }

/** The host of a multiaddr such as /ip4/198.51.100.7/tcp/4001 (its second part). */
const hostOf = (remoteAddr: string): string => remoteAddr.split('/')[2] ?? remoteAddr

export class BandwidthGovernor {
  readonly #limits: BandwidthLimits
  readonly #send: Direction
  readonly #receive: Direction

  constructor (limits: BandwidthLimits) {
    this.#limits = limits
    this.#send = { total: limits.total > 0 ? new TokenBucket(limits.total) : undefined, hosts: new Map() }
    this.#receive = { total: limits.total > 0 ? new TokenBucket(limits.total) : undefined, hosts: new Map() }
  }

  get active (): boolean { return this.#limits.total > 0 || this.#limits.perHost > 0 }

  #buckets (direction: Direction, host: string): TokenBucket[] {
    const buckets: TokenBucket[] = []
    if (direction.total !== undefined) buckets.push(direction.total)
    const own = direction.hosts.get(host)
    if (own !== undefined) buckets.push(own.bucket)
    return buckets
  }

  #join (direction: Direction, host: string): () => void {
    if (this.#limits.perHost <= 0) return () => {}
    const entry = direction.hosts.get(host) ?? { bucket: new TokenBucket(this.#limits.perHost), connections: 0 }
    entry.connections++
    direction.hosts.set(host, entry)
    return () => {
      entry.connections--
      if (entry.connections === 0) direction.hosts.delete(host)
    }
  }

  /** Puts a new connection (before its upgrade) under the caps. */
  govern (connection: unknown): void {
    if (!this.active) return
    const conn = connection as ThrottledConnection
    if (typeof conn.sendData !== 'function' || typeof conn.onData !== 'function') return
    const host = hostOf(conn.remoteAddr.toString())
    const leave = [this.#join(this.#send, host), this.#join(this.#receive, host)]
    const wait = (direction: Direction): number => Math.max(0, ...this.#buckets(direction, host).map((b) => b.waitMs()))
    const take = (direction: Direction, bytes: number): void => { for (const b of this.#buckets(direction, host)) b.take(bytes) }

    // Sending: in debt, nothing goes out; the stream waits for a `drain`, sent when the debt is paid.
    const sendData = conn.sendData.bind(conn)
    let drainTimer: NodeJS.Timeout | undefined
    const drainLater = (ms: number): void => {
      if (drainTimer !== undefined) return
      drainTimer = setTimeout(() => { drainTimer = undefined; conn.safeDispatchEvent('drain') }, ms)
    }
    conn.sendData = (data) => {
      const before = wait(this.#send)
      if (before > 0) { drainLater(before); return { sentBytes: 0, canSendMore: false } }
      const result = sendData(data)
      take(this.#send, result.sentBytes)
      const after = wait(this.#send)
      if (after > 0) { drainLater(after); return { sentBytes: result.sentBytes, canSendMore: false } }
      return result
    }

    // Receiving: in debt, the socket is paused until it is paid; the stream's own pauses are kept.
    const onData = conn.onData.bind(conn)
    const pause = conn.sendPause.bind(conn)
    const resume = conn.sendResume.bind(conn)
    let streamPaused = false
    let resumeTimer: NodeJS.Timeout | undefined
    conn.sendPause = () => { streamPaused = true; pause() }
    conn.sendResume = () => { streamPaused = false; if (resumeTimer === undefined) resume() }
    conn.onData = (data) => {
      onData(data)
      take(this.#receive, data.byteLength)
      const ms = wait(this.#receive)
      if (ms > 0 && resumeTimer === undefined) {
        pause()
        resumeTimer = setTimeout(() => { resumeTimer = undefined; if (!streamPaused) resume() }, ms)
      }
    }

    conn.addEventListener('close', () => {
      clearTimeout(drainTimer)
      clearTimeout(resumeTimer)
      for (const done of leave) done()
    }, { once: true })
  }
}
