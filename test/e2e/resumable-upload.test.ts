import { createHash, randomBytes } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, open, readFile, rename, rm, writeFile } from 'node:fs/promises'
import type { Server } from 'node:http'
import { createServer, connect, type AddressInfo, type Server as NetServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromiumAvailable, launchChromium } from '../support/chromium.ts'
import { startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'
import { uploadStream } from '../support/heimdall-process.ts'

const available = chromiumAvailable('the resumable upload browser tests')
const MiB = 1024 * 1024

/**
 * A TCP relay between the browser and Heimdall that counts the bytes the
 * browser sends and, once armed, cuts every connection when that count
 * passes a mark: a dropped connection as the browser and server see one.
 */
class CuttableRelay {
  readonly #server: NetServer
  readonly #sockets = new Set<Socket>()
  sent = 0
  cuts = 0
  #cutAt: number | undefined
  /** The port it relays to, set once that server listens. */
  target = 0

  constructor () {
    this.#server = createServer((client) => {
      const upstream = connect(this.target, '127.0.0.1')
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket)
        socket.on('error', () => {})
        socket.on('close', () => { this.#sockets.delete(socket); client.destroy(); upstream.destroy() })
      }
      client.on('data', (chunk: Buffer) => {
        this.sent += chunk.length
        if (this.#cutAt !== undefined && this.sent >= this.#cutAt) { this.#cutAt = undefined; this.cut(); return }
        if (!upstream.write(chunk)) { client.pause(); upstream.once('drain', () => client.resume()) }
      })
      upstream.pipe(client)
    })
  }

  /** Listens on a port of the system's choosing (no free port picked first that another process could take meanwhile); returns it. */
  async listen (): Promise<number> {
    await new Promise<void>((resolve, reject) => { this.#server.once('error', reject); this.#server.listen(0, '127.0.0.1', resolve) })
    return (this.#server.address() as AddressInfo).port
  }

  /** Cuts every connection once `bytes` more have been sent. */
  armAfter (bytes: number): void { this.#cutAt = this.sent + bytes }

  cut (): void {
    this.cuts++
    for (const socket of this.#sockets) socket.destroy()
  }

  async close (): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise((resolve) => this.#server.close(resolve))
  }
}

describe.skipIf(!available)('resumable uploads from the upload page (Chromium)', () => {
  let t: TestHeimdall
  let server: Server
  let relay: CuttableRelay
  let base: string
  let browser: Browser
  let work: string
  let big: string
  const size = 48 * MiB // over the page's 32 MiB threshold

  beforeAll(async () => {
    relay = new CuttableRelay()
    base = `http://127.0.0.1:${await relay.listen()}`
    // The server's links and its CSRF origin: the address the browser uses, the relay's.
    t = await startTestHeimdall({ PUBLIC_URL: base })
    server = t.heimdall.app.listen(0, '127.0.0.1')
    await new Promise((resolve, reject) => { server.once('listening', resolve); server.once('error', reject) })
    relay.target = (server.address() as AddressInfo).port
    browser = await launchChromium()
    work = await mkdtemp(join(tmpdir(), 'heimdall-tus-page-'))
    big = join(work, 'big.bin')
    const handle = await open(big, 'w')
    // Distinct 1 MiB blocks: no block repeats, so every byte resent would be counted.
    const seed = randomBytes(MiB)
    for (let i = 0; i < size / MiB; i++) {
      const block = Buffer.from(seed)
      createHash('sha256').update(`${i}`).digest().copy(block)
      await handle.write(block)
    }
    await handle.close()
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    await relay?.close()
    await new Promise((resolve) => server?.close(resolve))
    await t?.close()
    await rm(work, { recursive: true, force: true })
  })

  /** The link the row shows once done, and the root CID in it. */
  async function doneRow (page: Page): Promise<{ link: string, root: string }> {
    const row = page.locator('.upload-row').first()
    await expect.poll(async () => row.getAttribute('data-state'), { timeout: 120_000 }).toBe('done')
    const link = await row.locator('input').inputValue()
    const root = new RegExp(`^${base}/ipfs/(\\w+)/big\\.bin$`).exec(link)?.[1]
    if (root === undefined) throw new Error(`unexpected link ${link}`)
    return { link, root }
  }

  /** The upload page, and `folder` chosen with its button. */
  async function chooseFolder (page: Page, folder: string): Promise<void> {
    await page.goto('/upload')
    const chooser = page.waitForEvent('filechooser')
    await page.getByRole('button', { name: 'Choose a folder…' }).click()
    await (await chooser).setFiles(folder)
  }

  it('signed in: a connection cut mid-upload is resumed from the server\'s offset; one upload, the CID of a plain one', async () => {
    const context = await browser.newContext({ baseURL: base })
    const page = await context.newPage()
    const methods: string[] = []
    page.on('request', (req) => { if (req.url().includes('/upload/resumable')) methods.push(req.method()) })
    try {
      await page.goto('/new')
      await page.getByLabel('Username').fill('tus_session')
      await page.getByRole('button', { name: 'Create identity' }).click()
      const token = await page.locator('#token').inputValue()
      await page.goto('/upload')
      await page.locator('#file').setInputFiles(big)
      const before = relay.sent
      relay.armAfter(20 * MiB)
      await page.getByRole('button', { name: 'Upload', exact: true }).click()
      const { root } = await doneRow(page)

      expect(relay.cuts).toBe(1)
      // Created once, then PATCH, cut, and the rest from where the server is: tus-js-client asks the offset
      // (HEAD) after a failed PATCH, unless Chromium resent the cut PATCH on a new connection by itself
      // first and the server took it (a cut before any of its body was stored). Either way, no restart.
      expect(methods.filter((m) => m === 'POST')).toHaveLength(1)
      expect(methods.filter((m) => m === 'PATCH').length).toBeGreaterThanOrEqual(2)
      // What the server had was not sent again: a restart would send 20 MiB more; a resume at most the
      // 8 MiB chunk Chromium resends on its own after the cut (refused, 409: a stale offset).
      const sent = relay.sent - before
      expect(sent).toBeGreaterThan(size)
      expect(sent).toBeLessThan(size + 12 * MiB)

      // The same bytes in one plain POST /upload: the same root CID, and the same upload (one, not two).
      const plain = await uploadStream(`http://127.0.0.1:${(server.address() as { port: number }).port}`, token, big, 'big.bin')
      expect(plain.status).toBe(200)
      expect((plain.body as Array<{ Hash: string }>).at(-1)?.Hash).toBe(root)
      const listed = await (await fetch(`${base}/uploads?limit=10`, { headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' } })).json() as { total: number }
      expect(listed.total).toBe(1)
    } finally {
      await context.close()
    }
  }, 180_000)

  it('with the form\'s token: a reload mid-upload, then the same file picked again, continues where it stopped', async () => {
    const context = await browser.newContext({ baseURL: base })
    const page = await context.newPage()
    try {
      const created = await (await fetch(`${base}/new`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: 'tus_token' }) })).json() as { secret: string }
      const fill = async (): Promise<void> => {
        await page.goto('/upload')
        await page.getByLabel('Username').fill('tus_token')
        await page.getByLabel('Token').fill(created.secret)
        await page.locator('#file').setInputFiles(big)
      }
      await fill()
      const before = relay.sent
      await page.getByRole('button', { name: 'Upload', exact: true }).click()
      await expect.poll(async () => Number(await page.locator('.upload-row').first().getAttribute('data-percent') ?? 0), { timeout: 60_000 }).toBeGreaterThanOrEqual(30)
      await page.reload()

      await fill()
      await page.getByRole('button', { name: 'Upload', exact: true }).click()
      const { root } = await doneRow(page)
      // At least 30 % was sent before the reload; all of it together is the file about once, not 1.3 times.
      const sent = relay.sent - before
      expect(sent).toBeLessThan(size + 4 * MiB)
      const plain = await uploadStream(`http://127.0.0.1:${(server.address() as { port: number }).port}`, created.secret, big, 'big.bin')
      expect((plain.body as Array<{ Hash: string }>).at(-1)?.Hash).toBe(root)
    } finally {
      await context.close()
    }
  }, 180_000)

  it('the same file sent from two tabs goes as two uploads, not one resumed from both (each stopping the other)', async () => {
    const context = await browser.newContext({ baseURL: base })
    const first = await context.newPage()
    const second = await context.newPage()
    const answers = new Map<Page, { posts: number, conflicts: number }>([[first, { posts: 0, conflicts: 0 }], [second, { posts: 0, conflicts: 0 }]])
    for (const [page, seen] of answers) {
      page.on('response', (res) => {
        if (!res.url().includes('/upload/resumable')) return
        if (res.request().method() === 'POST') seen.posts++
        if (res.status() === 409) seen.conflicts++
      })
    }
    try {
      await first.goto('/new')
      await first.getByLabel('Username').fill('tus_two_tabs')
      await first.getByRole('button', { name: 'Create identity' }).click()
      // The first tab sends slowly, so the second finds its upload stored and under way.
      const cdp = await context.newCDPSession(first)
      await cdp.send('Network.enable')
      await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 4 * MiB })
      await first.goto('/upload')
      await first.locator('#file').setInputFiles(big)
      await first.getByRole('button', { name: 'Upload', exact: true }).click()
      await expect.poll(async () => Number(await first.locator('.upload-row').first().getAttribute('data-percent') ?? 0), { timeout: 60_000 }).toBeGreaterThanOrEqual(5)
      await second.goto('/upload')
      await second.locator('#file').setInputFiles(big)
      await second.getByRole('button', { name: 'Upload', exact: true }).click()
      await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 })
      const roots = [(await doneRow(first)).root, (await doneRow(second)).root]
      expect(roots[0]).toBe(roots[1])
      expect(answers.get(second)?.posts).toBe(1)
      expect((answers.get(first)?.conflicts ?? 0) + (answers.get(second)?.conflicts ?? 0)).toBe(0)
    } finally {
      await context.close()
    }
  }, 180_000)

  it('a folder over the threshold goes resumably as its zip: after a reload, the same folder chosen again continues where it stopped', async () => {
    const context = await browser.newContext({ baseURL: base })
    const page = await context.newPage()
    const folder = join(work, 'big folder')
    try {
      await mkdir(join(folder, 'data'), { recursive: true })
      await copyFile(big, join(folder, 'data', 'big.bin'))
      await writeFile(join(folder, 'notes.txt'), 'a big folder\n')
      await page.goto('/new')
      await page.getByLabel('Username').fill('tus_folder')
      await page.getByRole('button', { name: 'Create identity' }).click()
      const choose = async (): Promise<void> => { await chooseFolder(page, folder) }
      const before = relay.sent
      await choose()
      await expect.poll(async () => Number(await page.locator('.upload-row').first().getAttribute('data-percent') ?? 0), { timeout: 60_000 }).toBeGreaterThanOrEqual(30)
      await page.reload()
      await choose()
      const row = page.locator('.upload-row').first()
      await expect.poll(async () => row.getAttribute('data-state'), { timeout: 120_000 }).toBe('done')
      // The zip is the file and some headers: all of it sent about once, not 1.3 times.
      expect(relay.sent - before).toBeLessThan(size + 4 * MiB)
      expect(await row.locator('strong').textContent()).toBe('big folder.zip')
      const link = await row.locator('input').inputValue()
      const root = new RegExp(`^${base}/ipfs/(\\w+)/$`).exec(link)?.[1]
      expect(root).toBeDefined()
      const served = await fetch(`${base}/ipfs/${root ?? ''}/data/big.bin`)
      expect(served.status).toBe(200)
      expect(createHash('sha256').update(Buffer.from(await served.arrayBuffer())).digest('hex')).toBe(createHash('sha256').update(await readFile(big)).digest('hex'))
      expect(await (await fetch(`${base}/ipfs/${root ?? ''}/notes.txt`)).text()).toBe('a big folder\n')
    } finally {
      await context.close()
      await rm(folder, { recursive: true, force: true })
    }
  }, 180_000)

  it('a folder with a file renamed since its upload stopped starts a new upload, not one resumed onto the old bytes', async () => {
    const context = await browser.newContext({ baseURL: base })
    const page = await context.newPage()
    const folder = join(work, 'renamed folder')
    const posts: number[] = []
    page.on('response', (res) => { if (res.url().includes('/upload/resumable') && res.request().method() === 'POST') posts.push(res.status()) })
    try {
      await mkdir(join(folder, 'data'), { recursive: true })
      await copyFile(big, join(folder, 'data', 'a.bin'))
      await writeFile(join(folder, 'data', 'b.bin'), 'the second file\n')
      await page.goto('/new')
      await page.getByLabel('Username').fill('tus_folder_renamed')
      await page.getByRole('button', { name: 'Create identity' }).click()
      const choose = async (): Promise<void> => { await chooseFolder(page, folder) }
      await choose()
      await expect.poll(async () => Number(await page.locator('.upload-row').first().getAttribute('data-percent') ?? 0), { timeout: 60_000 }).toBeGreaterThanOrEqual(30)
      await page.reload()
      // The same size, the same dates, the same zip size: only the names differ.
      await rename(join(folder, 'data', 'b.bin'), join(folder, 'data', 'c.bin'))
      await choose()
      const row = page.locator('.upload-row').first()
      await expect.poll(async () => row.getAttribute('data-state'), { timeout: 120_000 }).toBe('done')
      expect(posts).toEqual([201, 201])
      const root = new RegExp(`^${base}/ipfs/(\\w+)/$`).exec(await row.locator('input').inputValue())?.[1] ?? ''
      expect(await (await fetch(`${base}/ipfs/${root}/data/c.bin`)).text()).toBe('the second file\n')
    } finally {
      await context.close()
      await rm(folder, { recursive: true, force: true })
    }
  }, 180_000)
})
