import { execFile } from 'node:child_process'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FIXTURES_DIR } from '../support/fixtures.ts'
import { startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

const run = promisify(execFile)
const CLIENT = fileURLToPath(new URL('./addon_client.py', import.meta.url))

async function hasPython (): Promise<boolean> {
  try { await run('python3', ['--version']); return true } catch { return false }
}
const python = await hasPython()
if (!python) {
  if (process.env.CI === 'true') throw new Error('python3 is required for the add-on round trip under CI')
  console.warn('\n!!!!! SKIPPING the Blender add-on round trip: python3 not found\n')
}

describe.skipIf(!python)('the Blender add-on round trip (a Python http.client client)', () => {
  let t: TestHeimdall
  let server: Server
  beforeAll(async () => {
    t = await startTestHeimdall()
    server = t.heimdall.app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
  })
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve))
    await t.close()
  })

  it('plugin routes → new user → zip upload → opens <Hash>/<name>.fst and its texture', async () => {
    const { port } = server.address() as AddressInfo
    const { stdout } = await run('python3', [CLIENT, '127.0.0.1', String(port), `${FIXTURES_DIR}fbx/box-binary.fbx`, `${FIXTURES_DIR}gltf/BoxTextured/CesiumLogoFlat.png`, 'blender_artist'])
    const seen = JSON.parse(stdout) as Record<string, unknown>
    expect(seen.routes_status).toBe(200)
    expect(seen.routes).toEqual({ new_user: '/new', asset_upload: '/upload', uploads: '/uploads', oauth: false })
    expect(seen.new_user_status).toBe(201)
    // make_archive writes the directory entry the add-on's zips have.
    expect(seen.zip_names).toEqual(['BlenderAvatar.fst', 'model.fbx', 'textures/', 'textures/skin.png'])
    expect(seen.upload_status).toBe(200)
    expect((seen.added as Array<{ Name: string }>).map((i) => i.Name).sort()).toEqual([
      'BlenderAvatar', 'BlenderAvatar/BlenderAvatar.fst', 'BlenderAvatar/model.fbx', 'BlenderAvatar/textures', 'BlenderAvatar/textures/skin.png'
    ])
    expect(seen.fst_status).toBe(200)
    expect(seen.fst).toContain('filename = model.fbx')
    expect(seen.texture_status).toBe(200)
    expect(seen.texture_matches).toBe(true)
  })
})
