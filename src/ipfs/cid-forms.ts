import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'

const DAG_PB = 0x70
const SHA2_256 = 0x12

/**
 * A CIDv0 and its CIDv1 name one DAG, and every pin store here keeps one pin
 * for both (as its CIDv1). Whatever decides whether a root stays pinned
 * (references counted, per-root locks) must therefore see both spellings as
 * one root: a pin request for the `Qm…` of an upload's `bafy…` root, once
 * deleted, otherwise found nothing referencing `Qm…` and unpinned the upload
 * (found by review).
 */

/** The one string a root is locked by: its CIDv1 in base32. Anything that is not a CID is its own key. */
export function rootKey (cid: string | CID): string {
  const parsed = typeof cid === 'string' ? parse(cid) : cid
  return parsed === undefined ? String(cid) : parsed.toV1().toString()
}

/** Every spelling a root may be recorded under: its CIDv1 in base32 and, for a dag-pb sha2-256 root, its CIDv0. */
export function rootForms (cid: string | CID): string[] {
  const parsed = typeof cid === 'string' ? parse(cid) : cid
  if (parsed === undefined) return [String(cid)]
  const v1 = parsed.toV1()
  const forms = [v1.toString()]
  if (v1.code === DAG_PB && v1.multihash.code === SHA2_256 && v1.multihash.size === 32) forms.push(v1.toV0().toString())
  const asGiven = typeof cid === 'string' ? cid : cid.toString()
  if (!forms.includes(asGiven)) forms.push(asGiven)
  return forms
}

/**
 * Every dag-pb spelling of `cid`'s multihash beside its own: what a root
 * recorded under any codec may be found as (a raw CID of a root's node names
 * the same bytes as the root).
 */
export function multihashForms (cid: CID): string[] {
  return [...new Set([...rootForms(cid), ...rootForms(CID.createV1(DAG_PB, cid.multihash))])]
}

/** Whether `text` is a dag-pb CID (a root or folder, which has a CIDv0 spelling too), not a raw leaf. */
export function isDagPb (text: string): boolean {
  return parse(text)?.code === DAG_PB
}

/** The key content is refused by in memory: its multihash in base58btc, any version or codec; text that is no CID as itself. */
export function multihashKey (cid: string | CID): string {
  const parsed = typeof cid === 'string' ? parse(cid) : cid
  return parsed === undefined ? String(cid) : base58btc.baseEncode(parsed.multihash.bytes)
}

function parse (text: string): CID | undefined {
  try { return CID.parse(text) } catch { return undefined }
}
