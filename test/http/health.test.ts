import { describe, expect, it } from 'vitest'
import { startTestHeimdall } from '../support/heimdall-harness.ts'

describe('/readyz', () => {
  it('fails with 503 naming the database when it stops answering, while /healthz stays up', async () => {
    const t = await startTestHeimdall()
    try {
      await t.request.get('/readyz').expect(200)
      await t.heimdall.database.close()
      const res = await t.request.get('/readyz').expect(503)
      expect(res.body.status).toBe('unavailable')
      expect(res.body.checks.ipfs).toBe('ok')
      // Names the failing component, never why: the driver's message goes to the log.
      expect(res.body).toEqual({ status: 'unavailable', checks: { database: 'unavailable', ipfs: 'ok', disk: 'ok' } })
      expect(t.logs.some((line) => line.includes('readiness check failed') && line.includes('"check":"database"'))).toBe(true)
      await t.request.get('/healthz').expect(200)
    } finally {
      await t.heimdall.backend.close()
    }
  })

  it('fails with 503 naming IPFS when the node is stopped', async () => {
    const t = await startTestHeimdall()
    try {
      await t.heimdall.backend.close()
      const res = await t.request.get('/readyz').expect(503)
      expect(res.body.checks.database).toBe('ok')
      expect(res.body.checks.ipfs).toBe('unavailable')
    } finally {
      await t.heimdall.database.close()
    }
  })
})
