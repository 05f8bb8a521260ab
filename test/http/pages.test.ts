import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

let t: TestHeimdall
beforeAll(async () => { t = await startTestHeimdall() })
afterAll(async () => { await t.close() })

describe('pages and their static assets', () => {
  it('link the built script and stylesheet by content-hashed names, cached for a year', async () => {
    const page = await t.request.get('/').set('Accept', 'text/html').expect(200)
    const css = /href="(\/static\/styles-[A-Z0-9]+\.css)"/.exec(page.text)?.[1]
    const js = /src="(\/static\/app-[A-Z0-9]+\.js)"/.exec(page.text)?.[1]
    expect(css).toBeDefined()
    expect(js).toBeDefined()
    for (const path of [css, js]) {
      const res = await t.request.get(path ?? '').expect(200)
      expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable')
    }
    await t.request.get('/static/app.js').expect(404)
  })

  it('send a content security policy that allows only this origin\'s scripts', async () => {
    const page = await t.request.get('/upload').set('Accept', 'text/html').expect(200)
    expect(page.headers['content-security-policy']).toContain("script-src 'self'")
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'")
    expect(page.text).not.toMatch(/<script>(?!<\/script>)/)
  })
})
