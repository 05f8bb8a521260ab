import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Server } from 'node:http'
import { fileURLToPath } from 'node:url'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CANVAS_PIXELS, chromiumAvailable, launchChromium } from '../support/chromium.ts'
import { AVATAR_FST, fixture, makeZip } from '../support/fixtures.ts'
import { startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'
import { freePort } from '../support/free-port.ts'

const SCREENSHOTS = fileURLToPath(new URL('../../test-results/screenshots/', import.meta.url))
const available = chromiumAvailable('the browser tests')
/** How wide the page is drawn, in CSS pixels (wider than the viewport: it scrolls sideways). */
const PAGE_WIDTH = 'document.documentElement.scrollWidth'


const VIEWPORTS = [
  { name: 'phone', viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 },
  { name: 'desktop', viewport: { width: 1280, height: 900 }, isMobile: false, hasTouch: false, deviceScaleFactor: 1 }
]

describe.skipIf(!available)('in a real browser (Chromium)', () => {
  let t: TestHeimdall
  let server: Server
  let base: string
  let browser: Browser

  beforeAll(async () => {
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    t = await startTestHeimdall({ PUBLIC_URL: base })
    server = t.heimdall.app.listen(port, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    await mkdir(SCREENSHOTS, { recursive: true })
    browser = await launchChromium()
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    await new Promise((resolve) => server?.close(resolve))
    await t?.close()
  })

  for (const device of VIEWPORTS) {
    describe(`at a ${device.name} viewport`, () => {
      let context: BrowserContext
      let page: Page
      const username = `e2e_${device.name}`
      let token = ''
      const shot = async (name: string): Promise<void> => { await page.screenshot({ path: `${SCREENSHOTS}${device.name}-${name}.png`, fullPage: true }) }

      beforeAll(async () => {
        context = await browser.newContext({ ...device, baseURL: base })
        await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base })
        page = await context.newPage()
      })
      afterAll(async () => { await context?.close() })

      it('creates an identity and shows the token once', async () => {
        await page.goto('/new')
        await shot('new')
        await page.getByLabel('Username').fill(username)
        await page.getByRole('button', { name: 'Create identity' }).click()
        await expect.poll(async () => page.locator('h1').textContent()).toContain(username)
        token = await page.locator('#token').inputValue()
        expect(Buffer.from(token, 'base64url')).toHaveLength(32)
        await expect.poll(async () => page.getByText('It cannot be shown again').count()).toBe(1)
        expect(await page.getByRole('link', { name: 'Download as a text file' }).getAttribute('download')).toBe(`heimdall-token-${username}.txt`)
        await shot('identity-created')
      })

      it('says a wrong token is wrong, in words, not a stack trace', async () => {
        await page.getByRole('button', { name: 'Sign out' }).click()
        await page.goto('/uploads')
        await page.getByLabel('Username').fill(username)
        await page.getByLabel('Token').fill('not-the-token')
        await page.getByRole('button', { name: 'Sign in' }).click()
        await expect.poll(async () => page.getByRole('alert').textContent()).toMatch(/wrong token/)
        expect(await page.content()).not.toMatch(/at .*\.ts:\d+/)
        await shot('sign-in-error')
      })

      it('signs in with the token, which then never appears in a URL', async () => {
        await page.getByLabel('Token').fill(token)
        await page.getByRole('button', { name: 'Sign in' }).click()
        await expect.poll(async () => page.locator('h1').textContent()).toBe(`Uploads of ${username}`)
        expect(page.url()).toBe(`${base}/uploads`)
        await expect.poll(async () => page.getByText(`Signed in as ${username}`).count()).toBe(1)
        await shot('uploads-empty')
      })

      it('uploads an avatar bundle and a glTF bundle, watching each progress bar reach 100 %', async () => {
        // The ASCII FBX 7.5 fixture: three.js's FBXLoader trips on the skin cluster of the binary one
        // (the viewer then shows the loader's error, which the server-side checks cannot foresee).
        const avatar = await makeZip([
          { path: 'avatar.fst', data: AVATAR_FST },
          { path: 'box.fbx', data: fixture('fbx/cubes-ascii.fbx') },
          { path: 'textures/' },
          { path: 'textures/skin.png', data: fixture('gltf/BoxTextured/CesiumLogoFlat.png') }
        ])
        const gltf = await makeZip([
          { path: 'BoxTextured.gltf', data: fixture('gltf/BoxTextured/BoxTextured.gltf') },
          { path: 'BoxTextured0.bin', data: fixture('gltf/BoxTextured/BoxTextured0.bin') },
          { path: 'CesiumLogoFlat.png', data: fixture('gltf/BoxTextured/CesiumLogoFlat.png') }
        ])
        await page.goto('/upload')
        await page.locator('#file').setInputFiles([
          { name: `avatar-${device.name}.zip`, mimeType: 'application/zip', buffer: avatar },
          { name: `box-${device.name}.zip`, mimeType: 'application/zip', buffer: gltf }
        ])
        await page.getByRole('button', { name: 'Upload', exact: true }).click()
        const rows = page.locator('.upload-row')
        await expect.poll(async () => rows.count()).toBe(2)
        await expect.poll(async () => page.locator('.upload-row[data-state="done"]').count(), { timeout: 30_000 }).toBe(2)
        for (const row of await rows.all()) {
          expect(await row.getAttribute('data-percent')).toBe('100')
          const progress = row.locator('progress')
          expect(await progress.evaluate((p) => { const bar = p as unknown as { value: number, max: number }; return bar.value === bar.max && bar.max > 0 })).toBe(true)
        }
        expect(await rows.first().locator('input').inputValue()).toMatch(new RegExp(`^${base}/ipfs/bafy[a-z0-9]+/avatar\\.fst$`))
        expect(await rows.first().getByRole('link', { name: 'Preview in 3D' }).getAttribute('href')).toMatch(/^\/preview\/bafy[a-z0-9]+\/avatar\.fst$/)
        await shot('upload-done')
      })

      it('copies a link that the gateway serves', async () => {
        await page.locator('.upload-row').nth(1).getByRole('button', { name: 'Copy' }).click()
        const copied = String(await page.evaluate('navigator.clipboard.readText()'))
        expect(copied).toMatch(/\/BoxTextured\.gltf$/)
        const res = await fetch(copied)
        expect(res.status).toBe(200)
        expect(res.headers.get('content-type')).toBe('model/gltf+json')
      })

      it('shows the rows again on Back after a result was opened, and none on a new visit', async () => {
        const links = await page.locator('.upload-row input').evaluateAll((inputs) => inputs.map((input) => (input as unknown as { value: string }).value))
        expect(links).toHaveLength(2)
        await page.locator('.upload-row').first().getByRole('link', { name: 'Open' }).click()
        await page.waitForURL(/\/ipfs\//)
        await page.goBack()
        await expect.poll(async () => page.locator('.upload-row[data-state="done"] input').evaluateAll((inputs) => inputs.map((input) => (input as unknown as { value: string }).value))).toEqual(links)
        // A new visit starts empty; Back to the earlier visit shows that visit's rows, not the new one's. (Through another
        // page: going to the address the tab shows replaces its history entry.)
        await page.goto('/uploads')
        await page.goto('/upload')
        expect(await page.locator('.upload-row').count()).toBe(0)
        await page.goBack()
        await page.goBack()
        await expect.poll(async () => page.locator('.upload-row[data-state="done"] input').evaluateAll((inputs) => inputs.map((input) => (input as unknown as { value: string }).value))).toEqual(links)
      })

      it('lists both uploads with their kinds', async () => {
        await page.goto('/uploads')
        const avatarRow = page.locator('tr', { hasText: `avatar-${device.name}` })
        const boxRow = page.locator('tr', { hasText: `box-${device.name}` })
        expect(await avatarRow.locator('.badge').textContent()).toBe('avatar')
        expect(await boxRow.locator('.badge').textContent()).toBe('model')
        await shot('uploads')
      })

      for (const which of ['box', 'avatar']) {
        it(`previews the ${which} model: the canvas shows more than the background`, async () => {
          await page.goto('/uploads')
          await page.locator('tr', { hasText: `${which}-${device.name}` }).getByRole('link', { name: 'preview' }).click()
          await expect.poll(async () => page.locator('[data-preview]').getAttribute('data-state'), { timeout: 30_000 }).not.toBeNull()
          // On failure, say what the viewer said.
          expect({ state: await page.locator('[data-preview]').getAttribute('data-state'), error: await page.locator('[data-preview-error]').textContent() }).toEqual({ state: 'loaded', error: '' })
          await page.waitForTimeout(500)
          const { drawn } = await page.evaluate<{ drawn: number }>(CANVAS_PIXELS)
          expect(drawn).toBeGreaterThan(0.01)
          // No page wider than the screen (the preview's long link, a table's hidden header, pushed phones sideways).
          expect(await page.evaluate<number>(PAGE_WIDTH)).toBeLessThanOrEqual(device.viewport.width)
          await shot(`preview-${which}`)
        }, 60_000)
      }

      it('fits the list of uploads and the account page in the screen\'s width', async () => {
        for (const path of ['/uploads', '/account']) {
          await page.goto(path)
          expect(await page.evaluate<number>(PAGE_WIDTH), path).toBeLessThanOrEqual(device.viewport.width)
        }
      })

      it('deletes an upload after a confirmation', async () => {
        await page.goto('/uploads')
        await page.locator('tr', { hasText: `box-${device.name}` }).getByRole('link', { name: /Delete/ }).click()
        await shot('confirm-delete')
        await page.getByRole('button', { name: 'Delete' }).click()
        await expect.poll(async () => page.locator('h1').textContent()).toBe(`Uploads of ${username}`)
        expect(await page.locator('tr', { hasText: `box-${device.name}` }).count()).toBe(0)
        expect(await page.locator('tr', { hasText: `avatar-${device.name}` }).count()).toBe(1)
      })

      it('makes an API key (shown once) and replaces the token on the account page', async () => {
        await page.getByRole('link', { name: 'Account' }).click()
        await expect.poll(async () => page.locator('h1').textContent()).toBe(`Account of ${username}`)
        expect(await page.locator('.usage').textContent()).toMatch(/of 10 GiB and 1 of 10000 uploads/)
        await page.getByLabel('Name').fill('laptop')
        await page.getByLabel('pin', { exact: true }).check()
        await page.getByRole('button', { name: 'Create a key' }).click()
        await expect.poll(async () => page.locator('#api-key').count()).toBe(1)
        const key = await page.locator('#api-key').inputValue()
        expect(key).toMatch(/^hk_[0-9a-f]{16}_/)
        await shot('api-key-created')
        expect((await fetch(`${base}/psa/pins`, { headers: { Authorization: `Bearer ${key}` } })).status).toBe(200)
        await page.getByRole('link', { name: 'Back to your account' }).click()
        await expect.poll(async () => page.locator('tr', { hasText: 'laptop' }).textContent()).toContain('upload, pin')
        expect(await page.content()).not.toContain(key.slice(20))
        // With a key listed, the page still fits the screen's width (its table's hidden header pushed phones sideways).
        expect(await page.evaluate<number>(PAGE_WIDTH)).toBeLessThanOrEqual(device.viewport.width)
        await shot('account')

        await page.getByRole('button', { name: 'Replace my token' }).click()
        await expect.poll(async () => page.locator('h1').textContent()).toBe('Your new token')
        const replaced = await page.locator('#token').inputValue()
        expect(replaced).not.toBe(token)
        expect((await fetch(`${base}/uploads`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(401)
        expect((await fetch(`${base}/uploads`, { headers: { Authorization: `Bearer ${replaced}` } })).status).toBe(200)
        token = replaced
        await shot('token-replaced')
        // Still signed in here: the page that replaced the token started a new session.
        await page.goto('/uploads')
        await expect.poll(async () => page.locator('h1').textContent()).toBe(`Uploads of ${username}`)
      })
    })
  }

  /** A creator's avatar folder as Blender and a texture tool leave it: a subfolder, a hidden file, a name with spaces. */
  async function avatarFolder (parent: string, name: string): Promise<string> {
    const folder = join(parent, name)
    await mkdir(join(folder, 'textures'), { recursive: true })
    await writeFile(join(folder, 'avatar.fst'), AVATAR_FST)
    await writeFile(join(folder, 'box.fbx'), fixture('fbx/cubes-ascii.fbx'))
    await writeFile(join(folder, 'textures', 'skin.png'), fixture('gltf/BoxTextured/CesiumLogoFlat.png'))
    await writeFile(join(folder, '.DS_Store'), 'not an asset')
    return folder
  }

  /** The root's listing and its texture, through the gateway, from the row's link (…/ipfs/<root>/avatar.fst). */
  async function expectServedAvatar (link: string): Promise<void> {
    expect(link).toMatch(new RegExp(`^${base}/ipfs/bafy[a-z0-9]+/avatar\\.fst$`))
    const texture = await fetch(new URL('textures/skin.png', link))
    expect(texture.status).toBe(200)
    expect(Buffer.from(await texture.arrayBuffer()).equals(fixture('gltf/BoxTextured/CesiumLogoFlat.png'))).toBe(true)
    expect((await fetch(new URL('.DS_Store', link))).status).toBe(404)
  }

  it('uploads a dropped folder as one bundle, its subfolders kept, beside a file dropped with it', async () => {
    const work = await mkdtemp(join(tmpdir(), 'heimdall-drop-'))
    const context = await browser.newContext({ baseURL: base })
    const page = await context.newPage()
    try {
      const folder = await avatarFolder(work, 'My Avatar')
      const loose = join(work, 'loose.glb')
      await writeFile(loose, fixture('glb/BoxTextured.glb'))
      await page.goto('/new')
      await page.getByLabel('Username').fill('e2e_drop')
      await page.getByRole('button', { name: 'Create identity' }).click()
      await page.goto('/upload')
      // A drop as the operating system makes it: real paths, a folder among them.
      const cdp = await context.newCDPSession(page)
      const box = await page.locator('[data-dropzone]').boundingBox()
      if (box === null) throw new Error('no drop zone')
      const at = { x: box.x + box.width / 2, y: box.y + box.height / 2 }
      await cdp.send('Input.setInterceptDrags', { enabled: false })
      for (const type of ['dragEnter', 'dragOver', 'drop'] as const) {
        await cdp.send('Input.dispatchDragEvent', { type, ...at, data: { items: [], files: [folder, loose], dragOperationsMask: 1 } })
      }
      await expect.poll(async () => page.locator('.upload-row[data-state="done"]').count(), { timeout: 30_000 }).toBe(2)
      expect(await page.locator('.upload-row').count()).toBe(2)
      const folderRow = page.locator('.upload-row', { hasText: 'My Avatar.zip' })
      expect(await folderRow.locator('.status').textContent()).toBe('Uploaded: avatar')
      await expectServedAvatar(await folderRow.locator('input').inputValue())
      expect(await page.locator('.upload-row', { hasText: 'loose.glb' }).locator('input').inputValue()).toMatch(/\/loose\.glb$/)
    } finally {
      await context.close()
      await rm(work, { recursive: true, force: true })
    }
  })

  /** The tab's session storage, as the page's script sees it. */
  interface TabStorage { sessionStorage: { getItem: (key: string) => string | null, setItem: (key: string, value: string) => void } }

  it('shows a reloaded page\'s refused rows with their reasons, never another person\'s rows, and forgets them all on sign-out', async () => {
    const context = await browser.newContext({ baseURL: base })
    const page = await context.newPage()
    const kept = async (): Promise<string[]> => page.evaluate(() => Object.keys(sessionStorage).filter((key) => key.startsWith('heimdall:upload-rows:')))
    try {
      await page.goto('/new')
      await page.getByLabel('Username').fill('e2e_alice')
      await page.getByRole('button', { name: 'Create identity' }).click()
      const alicesToken = await page.locator('#token').inputValue()
      await page.goto('/upload')
      await page.locator('#file').setInputFiles([
        { name: 'good.glb', mimeType: 'model/gltf-binary', buffer: fixture('glb/BoxTextured.glb') },
        { name: 'broken.glb', mimeType: 'model/gltf-binary', buffer: Buffer.from('not a glb at all') }
      ])
      await page.getByRole('button', { name: 'Upload', exact: true }).click()
      await expect.poll(async () => page.locator('.upload-row[data-state="done"], .upload-row[data-state="error"]').count(), { timeout: 30_000 }).toBe(2)
      const refusal = await page.locator('.upload-row', { hasText: 'broken.glb' }).locator('.result').textContent()
      await page.reload()
      await expect.poll(async () => page.locator('.upload-row').count()).toBe(2)
      expect(await page.locator('.upload-row', { hasText: 'broken.glb' }).locator('.result').textContent()).toBe(refusal)
      expect(await page.locator('[id]').evaluateAll((nodes) => new Set(nodes.map((n) => (n as unknown as { id: string }).id)).size === nodes.length)).toBe(true)

      // Kept for alice: signed in as someone else in this tab, a reload of the same page shows none of them.
      const alices = await page.evaluate((key) => (globalThis as unknown as TabStorage).sessionStorage.getItem(key), (await kept())[0] ?? '')
      await page.goto('/new')
      await page.getByLabel('Username').fill('e2e_bob')
      await page.getByRole('button', { name: 'Create identity' }).click()
      await page.goto('/upload')
      // As if alice's rows had been kept for this very visit (Back to her page would come to the same check).
      await page.evaluate((value) => {
        const { heimdallUploads } = (globalThis as unknown as { history: { state: { heimdallUploads: string } } }).history.state
        ;(globalThis as unknown as TabStorage).sessionStorage.setItem(`heimdall:upload-rows:${heimdallUploads}`, value ?? '')
      }, alices)
      await page.reload()
      expect(await page.locator('.upload-row').count()).toBe(0)

      // Signing out forgets every kept row of the tab.
      expect((await kept()).length).toBeGreaterThan(0)
      await page.getByRole('button', { name: 'Sign out' }).click()
      await page.waitForLoadState()
      expect(await kept()).toEqual([])

      // Sent with the form's username and token, no one signed in: the page cannot tell people apart, so nothing is kept.
      await page.goto('/upload')
      await page.getByLabel('Username').fill('e2e_alice')
      await page.getByLabel('Token').fill(alicesToken)
      await page.locator('#file').setInputFiles({ name: 'again.glb', mimeType: 'model/gltf-binary', buffer: fixture('glb/BoxTextured.glb') })
      await page.getByRole('button', { name: 'Upload', exact: true }).click()
      await expect.poll(async () => page.locator('.upload-row[data-state="done"]').count(), { timeout: 30_000 }).toBe(1)
      expect(await kept()).toEqual([])
      await page.reload()
      expect(await page.locator('.upload-row').count()).toBe(0)
    } finally {
      await context.close()
    }
  })

  it('uploads a folder chosen with its button, and says when a folder has nothing to send', async () => {
    const work = await mkdtemp(join(tmpdir(), 'heimdall-pick-'))
    const context = await browser.newContext({ baseURL: base })
    const page = await context.newPage()
    try {
      const folder = await avatarFolder(work, 'picked')
      const hiddenOnly = join(work, 'hidden-only')
      await mkdir(join(hiddenOnly, '.git'), { recursive: true })
      await writeFile(join(hiddenOnly, '.git', 'HEAD'), 'ref: refs/heads/main')
      await writeFile(join(hiddenOnly, '.DS_Store'), 'x')
      await page.goto('/new')
      await page.getByLabel('Username').fill('e2e_pick')
      await page.getByRole('button', { name: 'Create identity' }).click()
      await page.goto('/upload')
      const chooser = page.waitForEvent('filechooser')
      await page.getByRole('button', { name: 'Choose a folder…' }).click()
      await (await chooser).setFiles(folder)
      await expect.poll(async () => page.locator('.upload-row[data-state="done"]').count(), { timeout: 30_000 }).toBe(1)
      await expectServedAvatar(await page.locator('.upload-row', { hasText: 'picked.zip' }).locator('input').inputValue())

      const again = page.waitForEvent('filechooser')
      await page.getByRole('button', { name: 'Choose a folder…' }).click()
      await (await again).setFiles(hiddenOnly)
      // A folder of hidden files only: the browser gives the picker its files, and none is sent.
      await expect.poll(async () => page.locator('.upload-row[data-state="error"]').count(), { timeout: 10_000 }).toBe(1)
      expect(await page.locator('.upload-row[data-state="error"]').textContent()).toContain('"hidden-only" has no files to send (hidden files and folders are left out).')
    } finally {
      await context.close()
      await rm(work, { recursive: true, force: true })
    }
  })

  it('says a file of a folder changed while it was sent, not that the network failed; and that an empty folder has nothing to send', async () => {
    const work = await mkdtemp(join(tmpdir(), 'heimdall-changed-'))
    const context = await browser.newContext({ baseURL: base })
    const page = await context.newPage()
    try {
      const folder = await avatarFolder(work, 'resaved')
      await writeFile(join(folder, 'textures', 'big.png'), Buffer.alloc(6 * 1024 * 1024, 1))
      await mkdir(join(work, 'empty'))
      await page.goto('/new')
      await page.getByLabel('Username').fill('e2e_changed')
      await page.getByRole('button', { name: 'Create identity' }).click()
      await page.goto('/upload')
      // Slowly, so that the texture is saved again while the folder's zip is on its way.
      const cdp = await context.newCDPSession(page)
      await cdp.send('Network.enable')
      await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 1024 * 1024 })
      const chooser = page.waitForEvent('filechooser')
      await page.getByRole('button', { name: 'Choose a folder…' }).click()
      await (await chooser).setFiles(folder)
      await expect.poll(async () => page.locator('.upload-row').first().getAttribute('data-state'), { timeout: 20_000 }).toBe('uploading')
      const later = new Date(Date.now() + 5000)
      await utimes(join(folder, 'textures', 'skin.png'), later, later)
      await expect.poll(async () => page.locator('.upload-row').first().getAttribute('data-state'), { timeout: 30_000 }).toBe('error')
      expect(await page.locator('.upload-row').first().textContent()).toContain('A file in the folder changed (saved over, moved or deleted) while it was sent. Choose or drop the folder again.')
      await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 })

      const again = page.waitForEvent('filechooser')
      await page.getByRole('button', { name: 'Choose a folder…' }).click()
      await (await again).setFiles(join(work, 'empty'))
      await expect.poll(async () => page.locator('.upload-row[data-state="error"]').count(), { timeout: 10_000 }).toBe(2)
      expect(await page.locator('.upload-row').nth(1).textContent()).toContain('The folder you chose has no files to send')
    } finally {
      await context.close()
      await rm(work, { recursive: true, force: true })
    }
  }, 90_000)

  it('says when the previewer\'s own loader fails on a valid model, and that Overte may still load it', async () => {
    const context = await browser.newContext({ baseURL: base })
    const page = await context.newPage()
    try {
      await page.goto('/new')
      await page.getByLabel('Username').fill('e2e_preview_fail')
      await page.getByRole('button', { name: 'Create identity' }).click()
      await page.goto('/upload')
      // assimp's binary box.fbx: checked and accepted; three.js's FBXLoader trips on its colour layer.
      await page.locator('#file').setInputFiles({ name: 'box.fbx', mimeType: 'application/octet-stream', buffer: fixture('fbx/box-binary.fbx') })
      await page.getByRole('button', { name: 'Upload', exact: true }).click()
      await expect.poll(async () => page.locator('.upload-row[data-state="done"]').count(), { timeout: 30_000 }).toBe(1)
      await page.locator('.upload-row').getByRole('link', { name: 'Preview in 3D' }).click()
      await expect.poll(async () => page.locator('[data-preview]').getAttribute('data-state'), { timeout: 30_000 }).toBe('error')
      expect(await page.locator('[data-preview-error]').textContent()).toMatch(/^This preview could not read the model \(its three\.js loader failed: .+\)\. Overte reads models with its own loader and may still load it\.$/)
    } finally {
      await context.close()
    }
  }, 60_000)

  it('uploads through the plain form with JavaScript off', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false, baseURL: base })
    const page = await context.newPage()
    try {
      await page.goto('/new')
      await page.getByLabel('Username').fill('e2e_nojs')
      await page.getByRole('button', { name: 'Create identity' }).click()
      const token = await page.locator('#token').inputValue()
      // Without the script a copy button would do nothing: none is shown.
      expect(await page.getByRole('button', { name: 'Copy' }).count()).toBe(0)
      await page.getByRole('button', { name: 'Sign out' }).click()
      await page.goto('/upload')
      await page.getByLabel('Username').fill('e2e_nojs')
      await page.getByLabel('Token').fill(token)
      await page.locator('#file').setInputFiles({ name: 'plain.glb', mimeType: 'model/gltf-binary', buffer: fixture('glb/BoxTextured.glb') })
      await page.getByRole('button', { name: 'Upload', exact: true }).click()
      await expect.poll(async () => page.locator('h1').textContent()).toBe('Uploaded: plain')
      expect(await page.locator('input[readonly]').first().inputValue()).toMatch(/\/plain\.glb$/)
      // Away and Back: the result comes back (sent no-store, as other pages are, it was Chromium's "Confirm Form Resubmission").
      await page.goto('/uploads')
      await page.goBack()
      await expect.poll(async () => page.locator('h1').textContent()).toBe('Uploaded: plain')
      expect(await page.getByRole('button', { name: 'Copy' }).count()).toBe(0)
      await page.screenshot({ path: `${SCREENSHOTS}nojs-upload-result.png`, fullPage: true })
    } finally {
      await context.close()
    }
  })
})
