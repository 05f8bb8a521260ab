import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hasPython, runAddonClient } from '../support/addon-client.ts'
import { startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

const python = await hasPython()
if (!python) {
  if (process.env.CI === 'true') throw new Error('python3 is required for the add-on round trip under CI')
  console.warn('\n!!!!! SKIPPING the Blender add-on round trip: python3 not found\n')
}

describe.skipIf(!python)('the Blender add-on round trip (a Python http.client client)', () => {
  let t: TestHeimdall
  beforeAll(async () => { t = await startTestHeimdall() })
  afterAll(async () => { await t.close() })

  it('plugin routes → new user → zip upload → opens <Hash>/<name>.fst and its texture', async () => {
    const seen = await runAddonClient((await t.listen()).url, 'blender_artist')
    expect(seen.routes_status).toBe(200)
    // The four keys the add-on reads never change; keys may be added (resumable_upload, for the CLI and the page).
    expect(seen.routes).toEqual({ new_user: '/new', asset_upload: '/upload', uploads: '/uploads', oauth: false, resumable_upload: '/upload/resumable' })
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
