import type { Server } from 'node:http'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CANVAS_PIXELS, chromiumAvailable, launchChromium } from '../support/chromium.ts'
import { blenderAvatar, makeZip } from '../support/fixtures.ts'
import { createIdentity, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'
import { freePort } from '../support/free-port.ts'

const available = chromiumAvailable('the preview fidelity tests')


interface Preview { state: string | null, error: string, notes: string, textured: number, drawn: number, requests: string[] }

describe.skipIf(!available)('the preview loads what Overte loads (Chromium, WebGL on SwiftShader)', () => {
  let t: TestHeimdall
  let server: Server
  let base: string
  let browser: Browser
  let token: string
  let username: string

  beforeAll(async () => {
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    t = await startTestHeimdall({ PUBLIC_URL: base, GATEWAY_URL: `${base}/ipfs/` })
    server = t.heimdall.app.listen(port, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    ;({ token, username } = await createIdentity(t.request))
    browser = await launchChromium()
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    await new Promise((resolve) => server?.close(resolve))
    await t?.close()
  })

  /** Uploads through the add-on's API; returns the root item (with `preview` and `Hash`). */
  async function upload (data: Buffer, name: string): Promise<{ Hash: string, preview: string | null, warnings: string[] }> {
    const res = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', data, name).expect(200)
    return (res.body as Array<{ Hash: string, preview: string | null, warnings: string[] }>).at(-1) ?? { Hash: '', preview: null, warnings: [] }
  }

  async function preview (path: string): Promise<Preview> {
    const page: Page = await browser.newPage({ viewport: { width: 800, height: 600 } })
    const requests: string[] = []
    page.on('request', (r) => { requests.push(new URL(r.url()).pathname) })
    try {
      await page.goto(`${base}${path}`)
      await expect.poll(async () => page.locator('[data-preview]').getAttribute('data-state'), { timeout: 30_000 }).not.toBeNull()
      await page.waitForTimeout(700)
      const pixels = await page.evaluate<{ textured: number, drawn: number }>(CANVAS_PIXELS)
      return {
        state: await page.locator('[data-preview]').getAttribute('data-state'),
        error: await page.locator('[data-preview-error]').textContent() ?? '',
        notes: await page.locator('[data-preview-notes]').textContent() ?? '',
        ...pixels,
        requests
      }
    } finally {
      await page.close()
    }
  }

  it('the standard avatar layout (avatar.fst with texdir = textures, avatar.fbx, textures/skin.png) is previewed through its .fst, textured, not black', async () => {
    const root = await upload(await makeZip([
      { path: 'avatar.fst', data: blenderAvatar('avatar.fst') },
      { path: 'avatar.fbx', data: blenderAvatar('avatar.fbx') },
      { path: 'textures/skin.png', data: blenderAvatar('textures/skin.png') }
    ]), 'standard.zip')
    expect(root.warnings).toEqual([])
    expect(root.preview).toBe(`/preview/${root.Hash}/avatar.fst`)
    const shown = await preview(root.preview ?? '')
    expect({ state: shown.state, error: shown.error }).toEqual({ state: 'loaded', error: '' })
    expect(shown.requests).toContain(`/ipfs/${root.Hash}/textures/skin.png`)
    expect(shown.textured).toBeGreaterThan(0.02)
  }, 60_000)

  it('the FBX of that layout opened alone asks for its texture beside it, as Overte would, and is drawn untextured', async () => {
    const root = await upload(await makeZip([
      { path: 'avatar.fbx', data: blenderAvatar('avatar.fbx') },
      { path: 'textures/skin.png', data: blenderAvatar('textures/skin.png') }
    ]), 'spider.zip')
    expect(root.warnings).toHaveLength(1)
    const shown = await preview(`/preview/${root.Hash}/avatar.fbx`)
    expect(shown.requests).toContain(`/ipfs/${root.Hash}/skin.png`)
    expect(shown.requests).not.toContain(`/ipfs/${root.Hash}/textures/skin.png`)
    expect(shown.drawn).toBeGreaterThan(0.01)
    expect(shown.textured).toBeLessThan(0.005)
  }, 60_000)

  it('an FBX with its texture embedded is drawn textured', async () => {
    const root = await upload(blenderAvatar('avatar-embedded.fbx'), 'embedded.fbx')
    const shown = await preview(root.preview ?? '')
    expect({ state: shown.state, error: shown.error }).toEqual({ state: 'loaded', error: '' })
    expect(shown.textured).toBeGreaterThan(0.02)
  }, 60_000)

  it('a Draco GLB is decoded with the decoder from our own /static/, drawn textured, and the page says Overte will not show it', async () => {
    const root = await upload(blenderAvatar('avatar-draco.glb'), 'draco.glb')
    const shown = await preview(root.preview ?? '')
    expect({ state: shown.state, error: shown.error }).toEqual({ state: 'loaded', error: '' })
    expect(shown.requests.some((r) => /^\/static\/draco-[\d.]+\/draco_(?:wasm_wrapper\.js|decoder\.wasm)$/.test(r))).toBe(true)
    expect(shown.textured).toBeGreaterThan(0.02)
    expect(shown.notes).toMatch(/not in Overte: .*Draco/)
  }, 60_000)

  it('a model that loads but has nothing to draw says so, instead of "loaded" on a blank canvas', async () => {
    const empty = JSON.stringify({ asset: { version: '2.0' }, scene: 0, scenes: [{ nodes: [0] }], nodes: [{ name: 'Empty' }] })
    const root = await upload(Buffer.from(empty), 'empty.gltf')
    const shown = await preview(root.preview ?? '')
    expect(shown.state).toBe('empty')
    expect(shown.error).toMatch(/nothing to draw/)
  }, 60_000)

  it('the creator\'s browser renders the model\'s thumbnail once, kept with the record and shown in My uploads', async () => {
    const root = await upload(await makeZip([
      { path: 'avatar.fst', data: blenderAvatar('avatar.fst') },
      { path: 'avatar.fbx', data: blenderAvatar('avatar.fbx') },
      { path: 'textures/skin.png', data: blenderAvatar('textures/skin.png') }
    ]), 'pictured.zip')
    const context = await browser.newContext({ baseURL: base, viewport: { width: 800, height: 600 } })
    try {
      const page = await context.newPage()
      await page.goto(`/uploads?username=${username}&token=${token}`)
      const row = page.locator('tr', { hasText: 'pictured' })
      const id = await row.getAttribute('data-upload-id')
      const before = await context.request.get(`/uploads/${id}/thumbnail`)
      expect(before.headers()['content-type']).toMatch(/^image\/svg\+xml/)
      await page.goto(root.preview ?? '')
      await expect.poll(async () => page.locator('[data-preview]').getAttribute('data-thumbnail'), { timeout: 30_000 }).toBe('saved')
      const after = await context.request.get(`/uploads/${id}/thumbnail`)
      expect(after.headers()['content-type']).toBe('image/webp')
      await page.goto('/uploads')
      const thumb = page.locator('tr', { hasText: 'pictured' }).locator('img.thumb')
      await expect.poll(async () => thumb.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)).toBe(256)
    } finally {
      await context.close()
    }
  }, 60_000)
})
