import { Router } from 'express'

/** What a check found when it did not throw: 'ok', or a degraded state such as 'low' (disk space), with what to log. */
export interface CheckResult {
  state: string
  detail?: string
}

export interface ReadinessCheck {
  name: string
  /** Throws when the component does not answer ('unavailable'); may return a degraded state instead. */
  check: () => Promise<void | CheckResult>
}

const CHECK_TIMEOUT_MS = 3000

async function withTimeout<T> (check: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)) }, CHECK_TIMEOUT_MS) })
  try {
    return await Promise.race([check(), timeout])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * `/healthz`: the process answers. `/readyz`: and so do the database and the
 * IPFS backend, and there is disk space to take uploads. The answer names
 * the failing components only; why they fail (internal addresses, driver
 * messages) goes to the log, not to whoever asks.
 */
export function healthRoutes (checks: readonly ReadinessCheck[]): Router {
  const router = Router()
  router.get('/healthz', (_req, res) => { res.setHeader('Cache-Control', 'no-store').json({ status: 'ok' }) })
  router.get('/readyz', async (req, res) => {
    const results = await Promise.all(checks.map(async ({ name, check }) => {
      try {
        const result = await withTimeout(check) ?? { state: 'ok' }
        if (result.state !== 'ok') req.log.warn({ check: name, state: result.state, detail: result.detail }, 'readiness check degraded')
        return [name, result.state] as const
      } catch (err) {
        req.log.warn({ check: name, err }, 'readiness check failed')
        return [name, 'unavailable'] as const
      }
    }))
    const ready = results.every(([, state]) => state === 'ok')
    res.status(ready ? 200 : 503).setHeader('Cache-Control', 'no-store').json({ status: ready ? 'ready' : 'unavailable', checks: Object.fromEntries(results) })
  })
  return router
}
