import { Router } from 'express'

export interface ReadinessCheck {
  name: string
  check: () => Promise<void>
}

const CHECK_TIMEOUT_MS = 3000

async function withTimeout (check: () => Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)) }, CHECK_TIMEOUT_MS) })
  try {
    await Promise.race([check(), timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** `/healthz`: the process answers. `/readyz`: and so do the database and the IPFS backend. */
export function healthRoutes (checks: readonly ReadinessCheck[]): Router {
  const router = Router()
  router.get('/healthz', (_req, res) => { res.setHeader('Cache-Control', 'no-store').json({ status: 'ok' }) })
  router.get('/readyz', async (_req, res) => {
    const results = await Promise.all(checks.map(async ({ name, check }) => {
      try {
        await withTimeout(check)
        return [name, 'ok'] as const
      } catch (err) {
        return [name, err instanceof Error ? err.message : String(err)] as const
      }
    }))
    const ready = results.every(([, state]) => state === 'ok')
    res.status(ready ? 200 : 503).setHeader('Cache-Control', 'no-store').json({ status: ready ? 'ready' : 'unavailable', checks: Object.fromEntries(results) })
  })
  return router
}
