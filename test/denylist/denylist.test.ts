import { appendFile, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { DenylistFormatError, parseDenylist } from '../../src/denylist/denylist-file.ts'
import { Denylist } from '../../src/denylist/denylist.ts'
import { DenylistWatcher } from '../../src/denylist/denylist-watcher.ts'

const cid = (text: string): CID => CID.parse(text)

async function listOf (...files: Array<[name: string, lines: string[]]>): Promise<Denylist> {
  const denylist = new Denylist()
  denylist.replace(await Promise.all(files.map(async ([name, lines]) => parseDenylist(lines, name))))
  return denylist
}

// CIDs and double hashes from the spec's own examples (specs.ipfs.tech/compact-denylist-format).
const DIR = 'QmUboz9UsQBDeS6Tug1U8jgoFkgYxyYood9NDyVURAY9pK'
const FILE_V1 = 'bafybeihvvulpp4evxj7x7armbqcyg6uezzuig6jp3lktpbovlqfkuqeuoq'

describe('compact denylist format (IPIP-383)', () => {
  it('blocks a CID by multihash, whatever the CID version or codec, and the paths below it', async () => {
    const list = await listOf(['a.deny', [`/ipfs/${FILE_V1}`]])
    const v1 = cid(FILE_V1)
    expect(list.checkCid(v1)?.rule.status).toBe(410)
    expect(list.checkCid(v1.toV0())).toBeDefined()
    expect(list.checkCid(CID.createV1(0x55, v1.multihash))).toBeDefined()
    // Resolving a path below it reads the blocked block: blocked too, as in Kubo.
    expect(list.checkPath(v1, ['any', 'thing'])).toBeDefined()
    expect(list.checkCid(cid(DIR))).toBeUndefined()
  })

  it('blocks exact paths and prefixes, and lets later exceptions win', async () => {
    const list = await listOf(['a.deny', [
      '# exceptions after the rule they narrow',
      `/ipfs/${DIR}/blocked*`,
      `!/ipfs/${DIR}/blockednot`,
      `!/ipfs/${DIR}/blocked/not`,
      `!/ipfs/${DIR}/blocked/exceptions*`,
      `/ipfs/${DIR}/exact/file.png/`,
      `/ipfs/${DIR}/t%C3%A9l%20x.fbx`
    ]])
    const dir = cid(DIR)
    const blocked = (...path: string[]): boolean => list.checkPath(dir, path) !== undefined
    expect(blocked('blocked')).toBe(true)
    expect(blocked('blockedfoo')).toBe(true)
    expect(blocked('blocked', 'deep', 'x.png')).toBe(true)
    expect(blocked('blockednot')).toBe(false)
    expect(blocked('blocked', 'not')).toBe(false)
    expect(blocked('blocked', 'exceptions', 'a')).toBe(false)
    expect(blocked('exact', 'file.png')).toBe(true)
    expect(blocked('exact', 'file.png', 'below')).toBe(false)
    expect(blocked('exact')).toBe(false)
    expect(blocked('tél x.fbx')).toBe(true)
    expect(list.checkCid(dir)).toBeUndefined()
  })

  it('`/*` blocks the CID itself and every path; a rule after an exception restores the block', async () => {
    const list = await listOf(['a.deny', [`/ipfs/${DIR}/*`, `!/ipfs/${DIR}/ok.png`, `/ipfs/${DIR}/ok.png`]])
    expect(list.checkCid(cid(DIR))).toBeDefined()
    expect(list.checkPath(cid(DIR), ['ok.png'])).toBeDefined()
  })

  it('matches the spec\'s double-hash examples: sha2-256 and blake3, modern and legacy', async () => {
    const list = await listOf(['a.deny', [
      '//QmX9dhRcQcKUw3Ws8485T5a9dtjrSCQaUAHnG4iK9i4ceM',
      '//gW813G35CnLsy7gRYYHuf63hrz71U1xoLFDVeV7actx6oX',
      '//d9d295bde21f422d471a90f2a37ec53049fdf3e5fa3ee2e8f20e10003da429e7',
      '//3f8b9febd851873b3774b937cce126910699ceac56e72e64b866f8e258d09572',
      '//QmSju6XPmYLG611rmK7rEeCMFVuL6EHpqyvmEU6oGx3GR8'
    ]])
    expect(list.files[0]?.problems).toEqual([])
    const line = (found: { rule: { line: number } } | undefined): number | undefined => found?.rule.line
    // Modern sha2-256 of a multihash: every CID of it.
    expect(line(list.checkCid(cid('bafybeidjwik6im54nrpfg7osdvmx7zojl5oaxqel5cmsz46iuelwf5acja')))).toBe(1)
    expect(line(list.checkCid(cid('QmVTF1yEejXd9iMgoRTFDxBv7HAz9kuZcQNBzHrceuK9HR')))).toBe(1)
    // Modern blake3 of <multihash>/path: that path, not /path2.
    const blake = cid('bafyb4ieqht3b2rssdmc7sjv2cy2gfdilxkfh7623nvndziyqnawkmo266a')
    expect(line(list.checkPath(blake, ['path']))).toBe(2)
    expect(list.checkPath(blake, ['path2'])).toBeUndefined()
    // Legacy hex sha2-256 of "<CIDv1 base32>/" and "<CIDv1 base32>/path".
    const legacy = cid('bafybeiefwqslmf6zyyrxodaxx4vwqircuxpza5ri45ws3y5a62ypxti42e')
    expect(line(list.checkCid(legacy))).toBe(3)
    expect(line(list.checkPath(legacy, ['path']))).toBe(4)
    // The spec's note made with `ipfs block put`: /my/path below a CID, not the CID.
    const noted = cid('bafybeihrw75yfhdx5qsqgesdnxejtjybscwuclpusvxkuttep6h7pkgmze')
    expect(line(list.checkPath(noted, ['my', 'path']))).toBe(5)
    expect(list.checkCid(noted)).toBeUndefined()
  })

  it('reads the header\'s hints and per-item hints, and skips what it cannot read', async () => {
    const file = await parseDenylist([
      'version: 1',
      'name: Example list',
      'hints:',
      '  gateway_status: 451',
      '---',
      `/ipfs/${DIR}/a.png`,
      `/ipfs/${DIR}/b.png gateway_status:404 reason:dmca`,
      '/ipns/domain.example',
      'not a rule',
      '/ipfs/not-a-cid/x',
      `/ipfs/${DIR}/c.png gateway_status:200`,
      '//zzzz'
    ], 'hints.deny')
    const list = new Denylist()
    list.replace([file])
    expect(list.checkPath(cid(DIR), ['a.png'])?.rule.status).toBe(451)
    expect(list.checkPath(cid(DIR), ['b.png'])?.rule.status).toBe(404)
    expect(file.counts).toMatchObject({ path: 2, ipns: 1 })
    expect(file.problems.map((p) => p.line)).toEqual([9, 10, 11, 12])
  })

  it('refuses a header that is not YAML, or of another version', async () => {
    await expect(parseDenylist(['version: [1', '---'], 'bad.deny')).rejects.toThrow(DenylistFormatError)
    await expect(parseDenylist(['version: 2', '---'], 'v2.deny')).rejects.toThrow(/version 2/)
  })

  it('lets a later file (alphabetically) override an earlier one', async () => {
    const list = await listOf(['b-exceptions.deny', [`!/ipfs/${FILE_V1}`]], ['a-rules.deny', [`/ipfs/${FILE_V1}`]])
    expect(list.checkCid(cid(FILE_V1))).toBeUndefined()
    const reversed = await listOf(['a-exceptions.deny', [`!/ipfs/${FILE_V1}`]], ['b-rules.deny', [`/ipfs/${FILE_V1}`]])
    expect(reversed.checkCid(cid(FILE_V1))?.file).toBe('b-rules.deny')
  })
})

describe('DenylistWatcher', () => {
  let dir: string | undefined
  let watcher: DenylistWatcher | undefined
  afterEach(async () => {
    await watcher?.stop()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('picks up added, edited and removed files, and keeps a broken file\'s last good version', async () => {
    dir = await mkdtemp(join(tmpdir(), 'heimdall-deny-'))
    const denylist = new Denylist()
    let changes = 0
    watcher = new DenylistWatcher({ dir, denylist, logger: pino({ level: 'silent' }), intervalMs: 50, onChange: () => { changes++ } })
    await watcher.start()
    const target = cid(FILE_V1)
    expect(denylist.checkCid(target)).toBeUndefined()

    const path = join(dir, 'custom.deny')
    await writeFile(path, `/ipfs/${DIR}/x\n`)
    await watcher.scan()
    expect(denylist.checkPath(cid(DIR), ['x'])).toBeDefined()
    await appendFile(path, `/ipfs/${FILE_V1}\n`) // as the spec's `echo … >> custom.deny`
    await expect.poll(() => denylist.checkCid(target), { timeout: 2000 }).toBeDefined()

    const before = changes
    await writeFile(path, 'version: [\n---\n') // a broken edit
    await watcher.scan()
    expect(denylist.checkCid(target)).toBeDefined()
    expect(changes).toBe(before)

    await writeFile(join(dir, 'ignored.txt'), `/ipfs/${DIR}/*\n`)
    await unlink(path)
    await watcher.scan()
    expect(denylist.checkCid(target)).toBeUndefined()
    expect(denylist.checkCid(cid(DIR))).toBeUndefined()
    expect(denylist.empty).toBe(true)
  })

  it('a scan asked for while one runs looks at the folder again, after that one', async () => {
    dir = await mkdtemp(join(tmpdir(), 'heimdall-deny-'))
    const denylist = new Denylist()
    const path = join(dir, 'custom.deny')
    await writeFile(path, `/ipfs/${FILE_V1}\n`)
    let release = (): void => {}
    const held = new Promise<void>((resolve) => { release = resolve })
    let scans = 0
    // onChange holds the first scan open after it has read the folder.
    watcher = new DenylistWatcher({ dir, denylist, logger: pino({ level: 'silent' }), intervalMs: 60_000, onChange: async () => { if (scans++ === 0) await held } })
    const first = watcher.scan()
    await expect.poll(() => scans).toBe(1)
    await unlink(path)
    const second = watcher.scan()
    const third = watcher.scan()
    release()
    await first
    expect(denylist.checkCid(cid(FILE_V1))).toBeDefined() // what the first scan read
    await Promise.all([second, third])
    expect(denylist.checkCid(cid(FILE_V1))).toBeUndefined()
    expect(scans).toBe(2) // the two asks shared one scan
  })
})
