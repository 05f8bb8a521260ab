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
      expect(res.body.checks.database).not.toBe('ok')
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
      expect(res.body.checks.ipfs).not.toBe('ok')
    } finally {
      await t.heimdall.database.close()
    }
  })
})
