import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { doubleHashSupported } from './double-hash.ts'

/**
 * One `.deny` file in the compact denylist format (IPIP-383,
 * specs.ipfs.tech/compact-denylist-format): an optional YAML header ended by
 * `---`, then one block item per line, `!` for an exception, hints after the
 * item separated by spaces. Rules are indexed by what a request is checked
 * with (the multihash, a double hash) so that a check costs a few map
 * lookups, whatever the list's size.
 */

/** The spec's default answer for blocked content on a gateway. */
export const DEFAULT_GATEWAY_STATUS = 410
/** Lines longer than this are an error (the spec's limit, "\n" included). */
const MAX_LINE_BYTES = 2 * 1024 * 1024
/** A header longer than this is no header: its lines are read as items. */
const MAX_HEADER_BYTES = 1024 * 1024

export type RuleKind =
  /** `/ipfs/CID`: the multihash itself. */
  | 'cid'
  /** `/ipfs/CID/PATH`: exactly that path below the multihash. */
  | 'path'
  /** `/ipfs/CID/PATH*`: every path starting with PATH (`/*`: the CID and every path). */
  | 'prefix'
  /** `//HASH`: a double hash of `<b58 multihash>[/PATH]`, or of `<CIDv1 base32>/[PATH]` (legacy hex). */
  | 'double-hash'

export interface DenyRule {
  kind: RuleKind
  /** An exception (`!`): content it matches is allowed. */
  allow: boolean
  /** Decoded path (`a/b.png`, no leading or trailing slash) for `path` and `prefix` rules. */
  path: string
  /** The HTTP status a gateway answers with (hint `gateway_status`, default 410). */
  status: number
  /** Position in the file: among rules that match, the last one decides. */
  line: number
  /** The item as written, for logs and for the operator. */
  text: string
}

export interface DenylistProblem {
  line: number
  message: string
}

export interface DenylistFile {
  name: string
  /** Rules keyed by the base58btc multihash of their CID (`cid`, `path`, `prefix`). */
  byMultihash: Map<string, DenyRule[]>
  /** Modern double hashes, keyed by their base58btc multihash. */
  doubleHashes: Map<string, DenyRule[]>
  /** Legacy double hashes: lowercase hex sha2-256. */
  legacyHashes: Map<string, DenyRule[]>
  /** The hash functions the modern double hashes use, keyed `code/size`: each check hashes with each. */
  hashFunctions: Map<string, { code: number, size: number }>
  /** Rules counted by kind, IPNS rules too (Heimdall serves no IPNS, so they never match). */
  counts: Record<RuleKind | 'ipns', number>
  problems: DenylistProblem[]
}

export class DenylistFormatError extends Error {
  override readonly name = 'DenylistFormatError'
}

/** Reads and indexes one denylist file, streaming its lines. Malformed items are skipped and reported in `problems`. */
export async function readDenylistFile (path: string, name: string): Promise<DenylistFile> {
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity })
  return parseDenylist(lines, name)
}

export async function parseDenylist (lines: AsyncIterable<string> | Iterable<string>, name: string): Promise<DenylistFile> {
  const file: DenylistFile = {
    name,
    byMultihash: new Map(),
    doubleHashes: new Map(),
    legacyHashes: new Map(),
    hashFunctions: new Map(),
    counts: { cid: 0, path: 0, prefix: 0, 'double-hash': 0, ipns: 0 },
    problems: []
  }
  let hints: Record<string, string> = {}
  // Lines are held only until the header's end is known (at most 1 MiB).
  let pending: string[] | undefined = []
  let pendingBytes = 0
  let lineNumber = 0
  const item = (text: string, at: number): void => { addItem(file, text, at, hints) }

  for await (const line of lines) {
    lineNumber++
    if (pending === undefined) { item(line, lineNumber); continue }
    if (line.trimEnd() === '---') {
      hints = await parseHeader(pending.join('\n'))
      pending = undefined
      continue
    }
    pending.push(line)
    pendingBytes += Buffer.byteLength(line) + 1
    if (pendingBytes > MAX_HEADER_BYTES) {
      // No header after all: what was held is items.
      pending.forEach((held, i) => { item(held, i + 1) })
      pending = undefined
    }
  }
  pending?.forEach((held, i) => { item(held, i + 1) })
  return file
}

/** The header's hints. The YAML parser (72 modules) is loaded only for a list that has a header, not at every start. */
async function parseHeader (text: string): Promise<Record<string, string>> {
  const { parse: parseYaml } = await import('yaml')
  let header: unknown
  try {
    header = parseYaml(text) ?? {}
  } catch (err) {
    throw new DenylistFormatError(`the header is not valid YAML: ${(err as Error).message}`)
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new DenylistFormatError('the header is not a YAML map')
  const { version = 1, hints = {} } = header as { version?: unknown, hints?: unknown }
  if (String(version) !== '1') throw new DenylistFormatError(`denylist version ${String(version)} is not supported (only 1)`)
  if (typeof hints !== 'object' || hints === null || Array.isArray(hints)) throw new DenylistFormatError('the header\'s hints are not a map')
  return Object.fromEntries(Object.entries(hints).map(([key, value]) => [key, String(value)]))
}

function addItem (file: DenylistFile, raw: string, line: number, listHints: Record<string, string>): void {
  const problem = (message: string): void => { file.problems.push({ line, message }) }
  if (Buffer.byteLength(raw) + 1 > MAX_LINE_BYTES) { problem('line longer than 2 MiB'); return }
  const trimmed = raw.trim()
  if (trimmed === '' || trimmed.startsWith('#')) return
  const [itemText = '', ...hintTexts] = trimmed.split(/\s+/)
  const hints = { ...listHints }
  for (const hint of hintTexts) {
    const colon = hint.indexOf(':')
    if (colon <= 0) { problem(`hint "${hint}" is not key:value`); return }
    hints[hint.slice(0, colon)] = hint.slice(colon + 1)
  }
  const status = gatewayStatus(hints.gateway_status)
  if (status === undefined) { problem(`gateway_status "${hints.gateway_status ?? ''}" is not an HTTP status from 400 to 599`); return }
  const allow = itemText.startsWith('!')
  const text = allow ? itemText.slice(1) : itemText
  const rule = { allow, status, line, text: itemText }

  if (text.startsWith('//')) {
    addDoubleHash(file, text.slice(2), rule, problem)
    return
  }
  if (text.startsWith('/ipns/')) { file.counts.ipns++; return }
  if (!text.startsWith('/ipfs/')) { problem('an item starts with /ipfs/, /ipns/ or //'); return }

  const rest = text.slice('/ipfs/'.length)
  const slash = rest.indexOf('/')
  const cidText = slash < 0 ? rest.replace(/\*$/, '') : rest.slice(0, slash)
  let key: string
  try {
    key = base58btc.baseEncode(CID.parse(cidText).multihash.bytes)
  } catch {
    problem(`"${cidText}" is not a CID`)
    return
  }
  let path = slash < 0 ? '' : rest.slice(slash + 1)
  let kind: RuleKind = 'cid'
  if (path.endsWith('*') || rest.endsWith('*')) {
    kind = 'prefix'
    // `ab*` and `ab/*` are the same rule; `/*` covers the CID itself too.
    path = path.replace(/\*$/, '').replace(/\/$/, '')
  } else if (path.replace(/\/$/, '') !== '') {
    kind = 'path'
    path = path.replace(/\/$/, '')
  }
  try {
    path = path.split('/').map(decodeURIComponent).join('/')
  } catch {
    problem('the path is not valid percent-encoding')
    return
  }
  push(file.byMultihash, key, { ...rule, kind, path })
  file.counts[kind]++
}

function addDoubleHash (file: DenylistFile, hash: string, rule: Omit<DenyRule, 'kind' | 'path'>, problem: (message: string) => void): void {
  let known = false
  // A value that reads as both (hex digits are base58 too, but for 0) is both rules, as the spec says.
  if (/^[0-9a-fA-F]{64}$/.test(hash)) {
    push(file.legacyHashes, hash.toLowerCase(), { ...rule, kind: 'double-hash', path: '' })
    known = true
  }
  try {
    const digest = Digest.decode(base58btc.baseDecode(hash))
    if (doubleHashSupported(digest.code, digest.size)) {
      push(file.doubleHashes, hash, { ...rule, kind: 'double-hash', path: '' })
      file.hashFunctions.set(`${digest.code}/${digest.size}`, { code: digest.code, size: digest.size })
      known = true
    } else if (!known) {
      problem(`multihash function 0x${digest.code.toString(16)} is not supported`)
      return
    }
  } catch {
    // Not a multihash: fine if it was legacy hex.
  }
  if (known) file.counts['double-hash']++
  else problem(`"${hash}" is neither a base58btc multihash nor a hex sha2-256`)
}

function gatewayStatus (hint: string | undefined): number | undefined {
  if (hint === undefined) return DEFAULT_GATEWAY_STATUS
  const status = Number(hint)
  return Number.isInteger(status) && status >= 400 && status <= 599 ? status : undefined
}

function push (map: Map<string, DenyRule[]>, key: string, rule: DenyRule): void {
  const rules = map.get(key)
  if (rules === undefined) map.set(key, [rule])
  else rules.push(rule)
}
