import { describe, expect, it } from 'vitest'
import { BadRequestError } from '../../src/errors.ts'
import { formatUploadMetadata, parseUploadMetadata } from '../../src/http/tus-metadata.ts'

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64')

describe('Upload-Metadata', () => {
  it('reads base64 values in any script, keys alone as empty, spaces after commas', () => {
    const parsed = parseUploadMetadata(`filename ${b64('テクスチャ 😀.glb')}, name ${b64('x')},is_private`)
    expect([...parsed]).toEqual([['filename', 'テクスチャ 😀.glb'], ['name', 'x'], ['is_private', '']])
    expect(parseUploadMetadata(undefined).size).toBe(0)
    expect(parseUploadMetadata('  ').size).toBe(0)
  })

  it.each([
    ['a value that is not base64', 'filename not-base64!'],
    ['base64 of a wrong length', 'filename YWJj='],
    ['two spaces', 'filename  YQ=='],
    ['a third part', 'filename YQ== YQ=='],
    ['an empty pair', `filename ${b64('a')},,name ${b64('b')}`],
    ['a key twice', `filename ${b64('a')},filename ${b64('b')}`]
  ])('refuses %s with 400', (_what, header) => {
    expect(() => parseUploadMetadata(header)).toThrow(BadRequestError)
  })

  it('writes what it reads', () => {
    const metadata = new Map([['filename', 'a b,c.glb'], ['empty', '']])
    expect(parseUploadMetadata(formatUploadMetadata(metadata))).toEqual(metadata)
  })
})
