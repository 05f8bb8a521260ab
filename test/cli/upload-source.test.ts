import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openSource } from '../../src/client/upload-source.ts'

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'heimdall-source-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

describe('the name a file is sent under', () => {
  it('is --name with the file\'s extension, both parts of a gzipped model\'s', async () => {
    for (const [file, name, sent] of [['plain.obj', 'hero', 'hero.obj'], ['box.fbx.gz', 'hero', 'hero.fbx.gz'], ['Box.FBX.GZ', 'hero', 'hero.fbx.GZ'], ['box.fbx.gz', 'hero.fbx.gz', 'hero.fbx.gz'], ['notes.gz', 'n', 'n.gz'], ['box.fbx.gz', undefined, 'box.fbx.gz']] as const) {
      await writeFile(join(dir, file), 'x')
      expect((await openSource(join(dir, file), name)).fileName, `${file} --name ${name ?? '(none)'}`).toBe(sent)
    }
  })
})
