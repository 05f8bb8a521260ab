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

  it('are kept by no cache, nor by the browser\'s back/forward cache (Back after signing out showed the previous person\'s page); the gateway\'s listings still are', async () => {
    for (const path of ['/', '/upload', '/new', '/signin', '/no-such-page']) {
      const res = await t.request.get(path).set('Accept', 'text/html')
      expect({ path, cache: res.headers['cache-control'] }).toEqual({ path, cache: 'no-store' })
    }
  })

  it('send a content security policy that allows scripts and styles from /static/ only, not uploads under /ipfs/', async () => {
    const page = await t.request.get('/upload').set('Accept', 'text/html').expect(200)
    const csp = String(page.headers['content-security-policy'])
    const sources = (directive: string): string[] => new RegExp(`(?:^|; )${directive} ([^;]+)`).exec(csp)?.[1]?.split(' ') ?? []
    const own = new URL(page.request.url).origin
    for (const directive of ['script-src', 'style-src']) {
      // 'self' would let an uploaded .js served from /ipfs/ on this origin run as a page script.
      expect(sources(directive).sort()).toEqual([`${own}/static/`, `${t.heimdall.app.locals.publicUrl as string}/static/`].sort())
    }
    expect(csp).toContain("frame-ancestors 'none'")
    expect(page.text).not.toMatch(/<script>(?!<\/script>)/)
  })

  it('name no odd Host in the policy: PUBLIC_URL\'s origin stands in for it', async () => {
    const page = await t.request.get('/').set('Host', 'evil.example; script-src *').set('Accept', 'text/html').expect(200)
    const csp = String(page.headers['content-security-policy'])
    expect(csp).toContain(`script-src ${t.heimdall.app.locals.publicUrl as string}/static/;`)
    expect(csp).not.toContain('evil')
  })
})
