import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { unixfsBlocks, writeCar, type Block } from '../support/cars.ts'
import { AVATAR_FST, fixture } from '../support/fixtures.ts'
import { createIdentity, leftovers, makeDataDir, startTestHeimdall } from '../support/heimdall-harness.ts'
import { newToken, startHeimdallProcess } from '../support/heimdall-process.ts'

const run = promisify(execFile)
const IMPORT_CAR = fileURLToPath(new URL('../../src/cli/import-car.ts', import.meta.url))
const ADMIN = fileURLToPath(new URL('../../src/cli/admin.ts', import.meta.url))
const ENV = { SECRET_KEY: 'x'.repeat(40) }

/** `npm run import-car -- …` as an operator runs it: its own process, configured by the environment. */
async function importCar (dataDir: string, ...args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [IMPORT_CAR, ...args], { env: { PATH: process.env.PATH, DATA_DIR: dataDir, ...ENV } })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const failed = err as { code: number, stdout: string, stderr: string }
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr }
  }
}

/** A migrated pinset need not pass the creators' checks: an .html page rides along with the avatar. */
const FILES = [
  { path: 'avatar.fst', data: AVATAR_FST },
  { path: 'box.fbx', data: fixture('fbx/box-binary.fbx') },
  { path: 'docs/readme.html', data: '<h1>from another node</h1>' }
]

describe('npm run import-car', () => {
  let dataDir: string
  let carFile: string
  let root: string
  beforeAll(async () => {
    dataDir = await makeDataDir()
    const built = await unixfsBlocks(FILES, { wrap: true })
    root = built.root.toString()
    carFile = join(dataDir, 'Migrated.car')
    await writeFile(carFile, await writeCar([built.root], built.blocks))
  })
  afterAll(async () => { await rm(dataDir, { recursive: true, force: true }) })

  it('imports into a stopped data dir for --owner; the upload is then listed and served', async () => {
    const setup = await startTestHeimdall(ENV, dataDir)
    const owner = await createIdentity(setup.request, 'migrator')
    await setup.close({ keepData: true })

    const { code, stdout, stderr } = await importCar(dataDir, carFile, '--owner', 'migrator')
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(stdout).toMatch(new RegExp(`^imported ${root} \\(3 files, \\d+ bytes\\) via the stopped data dir as upload \\d+ "Migrated" of migrator`))

    const t = await startTestHeimdall(ENV, dataDir)
    try {
      const list = await t.request.get('/uploads').set('Authorization', `Bearer ${owner.token}`).expect(200)
      expect((list.body.uploads as Array<{ rootCid: string, name: string, kind: string }>)).toEqual([expect.objectContaining({ rootCid: root, name: 'Migrated', kind: 'avatar' })])
      const fst = await t.request.get(`/ipfs/${root}/avatar.fst`).expect(200)
      expect(fst.text).toBe(AVATAR_FST)
      expect(await t.heimdall.backend.isPinned((await import('multiformats/cid')).CID.parse(root))).toBe(true)
    } finally {
      await t.close({ keepData: true })
    }
  })

  it('refuses a corrupted CAR naming the block, and an unknown owner, leaving nothing', async () => {
    const setup = await startTestHeimdall(ENV, dataDir)
    const before = await leftovers(setup)
    await setup.close({ keepData: true })

    const other = await unixfsBlocks([{ path: 'noise.bin', data: randomBytes(100_000) }], { wrap: true })
    const victim = other.blocks.find((b) => b.bytes.byteLength === 100_000) as Block
    const bad = join(dataDir, 'bad.car')
    await writeFile(bad, await writeCar([other.root], other.blocks.map((b) => b === victim ? { cid: b.cid, bytes: Uint8Array.from(b.bytes, (x) => x ^ 0xff) } : b)))
    const corrupted = await importCar(dataDir, bad)
    expect(corrupted.code).toBe(1)
    expect(corrupted.stderr).toContain(`block ${victim.cid.toString()} does not match its CID`)

    const unknown = await importCar(dataDir, carFile, '--owner', 'nobody')
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('there is no user "nobody"')

    const after = await startTestHeimdall(ENV, dataDir)
    try {
      const now = await leftovers(after)
      expect(now.blocks).toBeLessThanOrEqual(before.blocks)
      expect(now.pins.sort()).toEqual(before.pins.sort())
      expect(now.uploads).toBe(before.uploads)
    } finally {
      await after.close({ keepData: true })
    }
  })

  it('streams the CAR to a running server over its control socket, with or without an owner', async () => {
    const server = await startHeimdallProcess({ DATA_DIR: dataDir, ...ENV })
    try {
      const token = await newToken(server.url, 'liveowner')
      const fresh = await unixfsBlocks([{ path: 'scene.json', data: '{"live": true}' }, { path: 'textures/skin.png', data: fixture('gltf/BoxTextured/CesiumLogoFlat.png') }], { wrap: true })
      const live = join(dataDir, 'Live.car')
      await writeFile(live, await writeCar([fresh.root], fresh.blocks))
      const owned = await importCar(dataDir, live, '--owner', 'liveowner')
      expect(owned.stdout).toMatch(new RegExp(`^imported ${fresh.root.toString()} \\(2 files, \\d+ bytes\\) via the running server as upload \\d+ "Live" of liveowner`))
      const list = await fetch(`${server.url}/uploads`, { headers: { Authorization: `Bearer ${token}` } })
      expect(((await list.json()) as { uploads: Array<{ rootCid: string }> }).uploads.map((u) => u.rootCid)).toEqual([fresh.root.toString()])
      expect(await (await fetch(`${server.url}/ipfs/${fresh.root.toString()}/scene.json`)).text()).toBe('{"live": true}')

      const unowned = await unixfsBlocks([{ path: 'pinned-only.json', data: '{"owner": null}' }], { wrap: true })
      const pinOnly = join(dataDir, 'PinOnly.car')
      await writeFile(pinOnly, await writeCar([unowned.root], unowned.blocks))
      expect((await importCar(dataDir, pinOnly)).stdout).toMatch(new RegExp(`^pinned ${unowned.root.toString()} \\(1 file, 15 bytes\\) via the running server, as the operator's pin`))
      expect(await (await fetch(`${server.url}/ipfs/${unowned.root.toString()}/pinned-only.json`)).text()).toBe('{"owner": null}')
      const usage = await run(process.execPath, [ADMIN, 'usage'], { env: { PATH: process.env.PATH, DATA_DIR: dataDir, ...ENV } })
      expect(usage.stdout).toContain("1 operator's pins (import-car without --owner)")
      // The operator ends it: unpinned (no upload holds it), recorded, gone at the next collection.
      const unpinned = await run(process.execPath, [ADMIN, 'unpin', unowned.root.toString()], { env: { PATH: process.env.PATH, DATA_DIR: dataDir, SUDO_USER: 'ops', ...ENV } })
      expect(unpinned.stdout).toMatch(/unpinned; its blocks go at the next collection/)
      expect(unpinned.stdout).toMatch(new RegExp(`ops: unpin ${unowned.root.toString()}`))
      await run(process.execPath, [ADMIN, 'gc'], { env: { PATH: process.env.PATH, DATA_DIR: dataDir, ...ENV } })
      expect((await fetch(`${server.url}/ipfs/${unowned.root.toString()}/pinned-only.json`)).status).toBe(404)
      await expect(run(process.execPath, [ADMIN, 'unpin', unowned.root.toString()], { env: { PATH: process.env.PATH, DATA_DIR: dataDir, ...ENV } })).rejects.toMatchObject({ stderr: expect.stringContaining('is not an operator\'s pin') })
    } finally {
      await server.stop()
    }
  })
})
