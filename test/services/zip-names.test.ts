import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BadRequestError } from '../../src/errors.ts'
import { ZipBundle } from '../../src/services/zip-bundle.ts'
import { codePageNote } from '../../src/services/zip-names.ts'
import { rawZip, unicodePathField, type RawZipEntry } from '../support/fixtures.ts'

const LIMITS = { maxEntries: 1000, maxUncompressedBytes: 1024 * 1024, maxRatio: 1000 }

/** `text` in a double-byte code page, as its Windows tools write names (built from TextDecoder's own table). */
function codePage (label: string): (text: string) => Buffer {
  const decoder = new TextDecoder(label)
  const table = new Map<string, number[]>()
  for (let lead = 0x81; lead <= 0xfe; lead++) {
    for (let trail = 0x40; trail <= 0xfe; trail++) {
      const text = decoder.decode(Buffer.from([lead, trail]))
      if (text.length === 1 && text !== '\ufffd' && !table.has(text)) table.set(text, [lead, trail])
    }
  }
  return (text) => Buffer.from([...text].flatMap((c) => table.get(c) ?? [c.charCodeAt(0)]))
}
const cp437 = (text: string): Buffer => Buffer.from([...text].map((c) => ({ é: 0x82, ñ: 0xa4 } as Record<string, number>)[c] ?? c.charCodeAt(0)))

/**
 * Names neither marked as UTF-8 nor given in a Unicode Path field: what
 * Windows Explorer and Info-ZIP, Python or 7-Zip on a system whose names are
 * in a code page write, read as ZIP_NAME_ENCODING says (found by a review
 * with those tools).
 */
describe('zip names in a code page', () => {
  let dir: string
  let count = 0
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'heimdall-zip-names-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  async function open (entries: readonly RawZipEntry[], nameEncoding?: string): Promise<ZipBundle> {
    const file = join(dir, `${count++}.zip`)
    await writeFile(file, rawZip(entries.map((entry) => ({ data: 'x', ...entry }))))
    return ZipBundle.open(file, LIMITS, nameEncoding === undefined ? {} : { nameEncoding })
  }
  const read = async (entries: readonly RawZipEntry[], nameEncoding?: string): Promise<{ paths: string[], codePage: Record<string, string> }> => {
    const bundle = await open(entries, nameEncoding)
    try {
      return { paths: bundle.entries.map((entry) => entry.path), codePage: Object.fromEntries([...bundle.unmarkedNames].map(([path, how]) => [path, how.encoding ?? `utf-8, else ${how.otherwise ?? ''}`])) }
    } finally {
      bundle.close()
    }
  }

  it('decides for the whole archive: a code page\'s names that happen to be valid UTF-8 (GBK\'s 猫 is è) are read in it when another name shows the code page', async () => {
    const gbk = codePage('gbk')
    expect(gbk('猫').toString('utf8')).toBe('è')
    expect(await read([{ name: gbk('猫.fst') }, { name: gbk('猫.fbx') }, { name: gbk('纹理/skin.png') }], 'gbk')).toEqual({
      paths: ['猫.fst', '猫.fbx', '纹理/skin.png'],
      codePage: { '猫.fst': 'gbk', '猫.fbx': 'gbk', '纹理/skin.png': 'gbk' }
    })
    // Alone, valid UTF-8 unmarked is UTF-8 (Info-ZIP and Python on Linux write it so), what it would be in the code page
    // kept for a refusal to say; ASCII names are never a code page's.
    expect(await read([{ name: Buffer.from('è.fst') }, { name: 'readme.txt' }], 'gbk')).toEqual({ paths: ['è.fst', 'readme.txt'], codePage: { 'è.fst': 'utf-8, else 猫.fst' } })
    // Operating-system metadata, left out, does not decide: a UTF-8 avatar with a ._ file named in Latin-1 stays UTF-8.
    expect((await read([{ name: Buffer.from('アバター.fbx') }, { name: Buffer.from('__MACOSX/._caf\xe9.png', 'latin1') }], 'shift_jis')).paths).toEqual(['アバター.fbx'])
    // UTF-8 that reads as a C1 control character (GBK's 聙 is C2 80) is not taken as UTF-8.
    expect(await read([{ name: gbk('聙.fst') }], 'gbk')).toEqual({ paths: ['聙.fst'], codePage: { '聙.fst': 'gbk' } })
    // A refusal (a file the .fst names seems missing) then says what such a name would be in the code page.
    expect(codePageNote(new Map([['è.fst', { name: 'è.fst', otherwise: '猫.fst' }]]))).toMatch(/^1 name in the zip is not marked as UTF-8 and was read as UTF-8, which it is valid as: è\.fst \(猫\.fst in this server's code page\)\. /)
    // Flagged and Unicode Path names keep their own reading beside a code page's.
    expect(await read([{ name: Buffer.from('肌.png'), flags: 0x800 }, { name: gbk('猫.fbx') }, { name: gbk('纹理.png') }], 'gbk')).toEqual({ paths: ['肌.png', '猫.fbx', '纹理.png'], codePage: { '猫.fbx': 'gbk', '纹理.png': 'gbk' } })
    // Code page 437's names are never valid UTF-8 by chance: each name alone, so a Linux zip with one Latin-1 name keeps its UTF-8 ones.
    expect(await read([{ name: Buffer.from('肌.png') }, { name: cp437('Café.png') }])).toEqual({ paths: ['肌.png', 'Café.png'], codePage: { 'Café.png': 'cp437' } })
  })

  it('reads as code page 437 a name its encoding would turn into control characters (EUC-KR, Big5, windows-125x leave C1 bytes unmapped), not refuse it', async () => {
    for (const encoding of ['euc-kr', 'big5', 'iso-8859-2']) {
      expect(await read([{ name: cp437('Café.png'), host: 0 }], encoding), encoding).toEqual({ paths: ['Café.png'], codePage: { 'Café.png': 'cp437' } })
    }
    // Not Shift-JIS either (a lead byte with no trail): code page 437 too.
    expect(await read([{ name: cp437('Niñé.png') }], 'shift_jis')).toEqual({ paths: ['Niñé.png'], codePage: { 'Niñé.png': 'cp437' } })
  })

  it('takes a Unicode Path field only when it holds UTF-8 made for the name; says when two entries read as one name', async () => {
    const header = Buffer.from('textures/hidden.png')
    expect((await read([{ name: header, extra: unicodePathField(header, Buffer.from([0xff, 0xfe])) }])).paths).toEqual(['textures/hidden.png'])
    expect((await read([{ name: header, extra: unicodePathField(header, Buffer.alloc(0)) }])).paths).toEqual(['textures/hidden.png'])
    const sjis = codePage('shift_jis')
    const err = await open([{ name: Buffer.from('アバター.fbx'), flags: 0x800 }, { name: sjis('アバター.fbx') }, { name: sjis('表情.png') }], 'shift_jis').then(() => undefined, (e: unknown) => e)
    expect((err as BadRequestError).details).toEqual([
      'アバター.fbx appears twice (two entries name it, written differently: \\ or / between folders, a leading ./, marked as UTF-8 or not, composed or decomposed)',
      expect.stringMatching(/^2 names in the zip are not marked as UTF-8 and were read as shift_jis \(this server's setting\): アバター\.fbx, 表情\.png\. If a name looks wrong/)
    ])
    // The same pair the other way round (the unmarked one first) says it too; a plain duplicate is only that.
    const reversed = await open([{ name: sjis('アバター.fbx') }, { name: Buffer.from('アバター.fbx'), flags: 0x800 }], 'shift_jis').then(() => undefined, (e: unknown) => e)
    expect((reversed as BadRequestError).details.at(-1)).toMatch(/^1 name in the zip is not marked as UTF-8 and was read as shift_jis/)
    // A plain duplicate is only that, also in a code page.
    for (const [name, encoding] of [['avatar.fbx', undefined], [sjis('アバター.fbx'), 'shift_jis']] as const) {
      const twice = await open([{ name }, { name }, { name: sjis('テクスチャ.png') }], encoding).then(() => undefined, (e: unknown) => e)
      expect((twice as BadRequestError).details).toEqual([`${typeof name === 'string' ? name : 'アバター.fbx'} appears twice (two entries have the same name)`])
    }
    // A refusal that is not about a name says nothing of names; nor do names left out or folders count.
    const inside = await open([{ name: sjis('アバター.zip') }, { name: 'avatar.zip' }, { name: sjis('テクスチャ/') }]).then(() => undefined, (e: unknown) => e)
    const details = (inside as BadRequestError).details
    expect(details).toHaveLength(2)
    expect(details.every((line) => line.endsWith('is a zip inside the zip'))).toBe(true)
  })

  it('says what a name read as UTF-8 would be in the code page as the bundle would use it (a Windows tool\'s \\, bsdtar\'s ./)', async () => {
    const cp866 = (text: string): Buffer => { const decoder = new TextDecoder('ibm866'); const table = new Map(Array.from({ length: 128 }, (_, i) => [decoder.decode(Buffer.from([0x80 + i])), 0x80 + i])); return Buffer.from([...text].map((c) => table.get(c) ?? c.charCodeAt(0))) }
    expect(cp866('сад').toString('utf8')).toBe('ᠤ')
    expect(await read([{ name: cp866('tex\\сад.png'), host: 0 }, { name: cp866('./сад.fst'), host: 3 }], 'ibm866')).toEqual({
      paths: ['tex/ᠤ.png', 'ᠤ.fst'],
      codePage: { 'tex/ᠤ.png': 'utf-8, else tex/сад.png', 'ᠤ.fst': 'utf-8, else сад.fst' }
    })
  })

  it('lists at most a hundred unsafe entries, then how many more', async () => {
    const err = await open(Array.from({ length: 150 }, (_, i) => ({ name: `a\\${i}.png` }))).then(() => undefined, (e: unknown) => e)
    const details = (err as BadRequestError).details
    expect(details).toHaveLength(101)
    expect(details.at(-1)).toBe('and 50 more')
  })

  it('a refusal of a name that may be a misreading (a Shift-JIS trail byte read as a backslash) says which names were read in a code page', async () => {
    const sjis = codePage('shift_jis')
    const entries = [{ name: sjis('テクスチャ/ソックス.png') }, { name: sjis('表情.png') }]
    const err = await open(entries).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(BadRequestError)
    const details = (err as BadRequestError).details
    expect(details.slice(0, -1).every((line) => line.includes('uses backslashes'))).toBe(true)
    expect(details.at(-1)).toMatch(/^2 names in the zip are not marked as UTF-8 and were read as code page 437 \(the zip format's default\): /)
    // In the right code page they are what the creator typed.
    expect((await read(entries, 'shift_jis')).paths).toEqual(['テクスチャ/ソックス.png', '表情.png'])
  })
})
