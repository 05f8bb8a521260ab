import { execFile, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { crc32 as zlibCrc32 } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ZipBundle } from '../../src/services/zip-bundle.ts'
import { crc32, FolderReadError, zipFolder, ZipTooLargeError, type FolderFile } from '../../web/zip-writer.ts'
import { requireTool } from '../support/tools.ts'

const run = promisify(execFile)
const LIMITS = { maxEntries: 10_000, maxUncompressedBytes: 1 << 30, maxRatio: 1100 }
const python = requireTool('python3', spawnSync('python3', ['--version']).status === 0, 'the browser\'s folder zip')

/** Python's zipfile reads the zip and checks every entry's CRC: its names, sizes and (for the dates) DOS times. */
const PY_CHECK = `
import json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    print(json.dumps({"bad": bad, "entries": [[i.filename, i.file_size, i.compress_type, list(i.date_time)] for i in z.infolist()]}))
`

describe('the browser\'s folder zip (web/zip-writer.ts)', () => {
  let work: string
  beforeAll(async () => { work = await mkdtemp(join(tmpdir(), 'heimdall-zip-writer-')) })
  afterAll(async () => { await rm(work, { recursive: true, force: true }) })

  const when = new Date(2026, 10, 27, 10, 30, 44).getTime()
  const folder = (): FolderFile[] => [
    { path: 'textures/skin.png', file: new File([randomBytes(70_001)], 'skin.png', { lastModified: when }) },
    { path: 'avatar.fst', file: new File(['name = Ünïcødé\nfilename = avatar.fbx\n'], 'avatar.fst', { lastModified: when - 5000 }) },
    { path: 'avatar.fbx', file: new File([randomBytes(300_000)], 'avatar.fbx', { lastModified: when - 10_000 }) },
    { path: 'textures/ñame with spaces.jpg', file: new File([randomBytes(13)], 'x.jpg', { lastModified: when }) },
    { path: 'empty.txt', file: new File([], 'empty.txt', { lastModified: when }) }
  ]

  it('computes zip\'s CRC-32, in pieces as in one', () => {
    for (const length of [0, 1, 7, 8, 9, 63, 64, 65, 1000, 65_537]) {
      const bytes = randomBytes(length)
      expect(crc32(bytes)).toBe(zlibCrc32(bytes))
      const cut = Math.floor(length / 3)
      expect(crc32(bytes.subarray(cut), crc32(bytes.subarray(0, cut)))).toBe(zlibCrc32(bytes))
    }
  })

  for (const [what, zip64From] of [['plain', undefined], ['with every ZIP64 record (sizes, offsets, count and end)', 10]] as const) {
    it(`writes a stored zip that the server's reader and Python's zipfile read back byte for byte: ${what}`, async () => {
      const files = folder()
      const reads: number[] = []
      const { file: zip, sources } = await zipFolder('My Avatar', files, { onRead: (read) => { reads.push(read) }, ...(zip64From === undefined ? {} : { zip64From }) })
      expect(new Set(sources)).toEqual(new Set(files.map((f) => f.file)))
      expect(zip.name).toBe('My Avatar.zip')
      expect(zip.type).toBe('application/zip')
      expect(zip.lastModified).toBe(when)
      const total = files.reduce((sum, f) => sum + f.file.size, 0)
      expect(reads.at(-1)).toBe(total)
      const path = join(work, `${zip64From ?? 'plain'}.zip`)
      await writeFile(path, Buffer.from(await zip.arrayBuffer()))

      const bundle = await ZipBundle.open(path, LIMITS)
      try {
        expect(bundle.files.map((e) => e.path)).toEqual(['avatar.fbx', 'avatar.fst', 'empty.txt', 'textures/skin.png', 'textures/ñame with spaces.jpg'])
        const contents = new Map<string, Buffer>()
        for (const candidate of bundle.candidates()) {
          const chunks: Uint8Array[] = []
          // The server's reader checks each entry's CRC-32 as it reads it.
          for await (const chunk of candidate.content ?? []) chunks.push(chunk)
          contents.set(candidate.path, Buffer.concat(chunks))
        }
        for (const f of files) expect(contents.get(f.path)?.equals(Buffer.from(await f.file.arrayBuffer()))).toBe(true)
      } finally {
        bundle.close()
      }

      if (python) {
        const { stdout } = await run('python3', ['-c', PY_CHECK, path])
        const checked = JSON.parse(stdout) as { bad: string | null, entries: Array<[string, number, number, number[]]> }
        expect(checked.bad).toBeNull()
        expect(checked.entries.map(([name, size, method]) => [name, size, method])).toEqual(files.map((f) => [f.path, f.file.size, 0]).sort((a, b) => String(a[0]) < String(b[0]) ? -1 : 1))
        expect(checked.entries.find(([name]) => name === 'textures/skin.png')?.[3]).toEqual([2026, 11, 27, 10, 30, 44])
      }
    })
  }

  it('makes the same bytes from the same folder, whatever order its files come in', async () => {
    const files = folder()
    const one = await zipFolder('a', files)
    const two = await zipFolder('a', [...files].reverse())
    expect(Buffer.from(await one.file.arrayBuffer()).equals(Buffer.from(await two.file.arrayBuffer()))).toBe(true)
    expect(one.fingerprint).toBe(two.fingerprint)
  })

  it('gives another fingerprint (the resume key) to the folder with a file renamed, or rewritten at the same size and date', async () => {
    const files = folder()
    const { fingerprint } = await zipFolder('a', files)
    const renamed = files.map((f) => (f.path === 'avatar.fbx' ? { ...f, path: 'avatar.fbz' } : f))
    expect((await zipFolder('a', renamed)).fingerprint).not.toBe(fingerprint)
    const rewritten = files.map((f) => (f.path === 'avatar.fbx' ? { ...f, file: new File([randomBytes(f.file.size)], 'avatar.fbx', { lastModified: f.file.lastModified }) } : f))
    expect((await zipFolder('a', rewritten)).fingerprint).not.toBe(fingerprint)
  })

  it('refuses a zip larger than maxBytes before reading a byte, the size it would have exact', async () => {
    const files = folder()
    const { file } = await zipFolder('a', files)
    let reads = 0
    await expect(zipFolder('a', files, { maxBytes: file.size - 1, onRead: () => { reads++ } })).rejects.toEqual(new ZipTooLargeError(file.size, file.size - 1))
    expect(reads).toBe(0)
    expect((await zipFolder('a', files, { maxBytes: file.size })).file.size).toBe(file.size)
    // The ZIP64 layout's size is foreseen as exactly.
    const big = await zipFolder('a', files, { zip64From: 10 })
    await expect(zipFolder('a', files, { zip64From: 10, maxBytes: big.file.size - 1 })).rejects.toBeInstanceOf(ZipTooLargeError)
  })

  it('names the file it could not read, and stops when asked', async () => {
    const broken = new File([randomBytes(10)], 'x.png')
    Object.defineProperty(broken, 'arrayBuffer', { value: async () => Promise.reject(new Error('NotReadableError')) })
    const failed = zipFolder('a', [...folder(), { path: 'textures/broken.png', file: broken }])
    await expect(failed).rejects.toBeInstanceOf(FolderReadError)
    await expect(failed).rejects.toHaveProperty('path', 'textures/broken.png')
    const stop = new AbortController()
    stop.abort(new Error('cancelled'))
    await expect(zipFolder('a', folder(), { signal: stop.signal })).rejects.toThrow('cancelled')
  })
})
