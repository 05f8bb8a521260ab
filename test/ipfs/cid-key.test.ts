import { describe, expect, it } from 'vitest'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { cidKey } from '../../src/ipfs/cid-key.ts'

describe('cidKey', () => {
  it('is equal exactly when the CIDs are, as their text is: version, codec and multihash', async () => {
    const v0 = CID.parse('QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n')
    const v1 = v0.toV1()
    const rawOfSame = CID.createV1(raw.code, v0.multihash)
    const other = CID.createV1(raw.code, await sha256.digest(new Uint8Array([1])))
    const forms = [v0, v1, rawOfSame, other]
    for (const a of forms) {
      for (const b of forms) expect(cidKey(a) === cidKey(b)).toBe(a.toString() === b.toString())
    }
    expect(cidKey(CID.parse(v1.toString()))).toBe(cidKey(v1))
    // Of a CID decoded from a view into a larger block: only the CID's own bytes.
    const block = new Uint8Array([9, 9, ...v1.bytes, 9])
    expect(cidKey(CID.decode(block.subarray(2, 2 + v1.bytes.length)))).toBe(cidKey(v1))
  })

  it('is one flat one-byte character per byte of the CID, not its base32 text built a character at a time', () => {
    const cid = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
    const key = cidKey(cid)
    expect(key).toHaveLength(cid.bytes.length)
    expect(Uint8Array.from(key, (c) => c.charCodeAt(0))).toEqual(cid.bytes)
  })
})
