import { base32 } from 'multiformats/bases/base32'
import { base58btc } from 'multiformats/bases/base58'
import type { CID } from 'multiformats/cid'
import { doubleHash, legacyDoubleHash } from './double-hash.ts'
import type { DenyRule, DenylistFile } from './denylist-file.ts'

/** Why something is blocked: the deciding rule and the file it is in. */
export interface BlockedBy {
  file: string
  rule: DenyRule
}

/**
 * Every loaded denylist, asked whether content may be served, stored or
 * pinned. Files count in alphabetical order and rules in file order: of the
 * rules that match, the last decides (an exception `!` after a rule lifts it,
 * a rule after an exception restores it), as IPIP-383 says.
 *
 * Two questions, as the spec's layers ask them:
 * - `checkPath(root, path)`, for a request `/ipfs/<root>/<path>` before it is
 *   resolved: CID rules of the root (which, as in Kubo, stop every path below
 *   it too: resolving one reads the blocked block), path and prefix rules, and
 *   double hashes of `<multihash>/<path>`;
 * - `checkCid(cid)`, for every node a resolution or an import meets: CID
 *   rules, `/*` rules and double hashes of the multihash alone.
 */
export class Denylist {
  #files: readonly DenylistFile[] = []

  /** Replaces the loaded lists; `files` in any order. */
  replace (files: Iterable<DenylistFile>): void {
    this.#files = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  get files (): readonly DenylistFile[] {
    return this.#files
  }

  /** Whether any list has a rule at all: when none, checks cost nothing. */
  get empty (): boolean {
    return this.#files.every((file) => file.byMultihash.size === 0 && file.doubleHashes.size === 0 && file.legacyHashes.size === 0)
  }

  checkPath (root: CID, path: readonly string[]): BlockedBy | undefined {
    if (path.length === 0) return this.checkCid(root)
    const joined = path.join('/')
    return this.#decide(root, (rule) => {
      switch (rule.kind) {
        case 'cid': return true
        case 'path': return rule.path === joined
        case 'prefix': return joined.startsWith(rule.path)
        case 'double-hash': return true
      }
    }, joined)
  }

  checkCid (cid: CID): BlockedBy | undefined {
    return this.#decide(cid, (rule) => rule.kind === 'cid' || rule.kind === 'double-hash' || (rule.kind === 'prefix' && rule.path === ''), '')
  }

  #decide (cid: CID, matches: (rule: DenyRule) => boolean, path: string): BlockedBy | undefined {
    if (this.#files.length === 0) return undefined
    const multihash = base58btc.baseEncode(cid.multihash.bytes)
    let legacyCid: string | undefined
    // The last file with a matching rule decides, with its last matching rule.
    for (let i = this.#files.length - 1; i >= 0; i--) {
      const file = this.#files[i]
      if (file === undefined) continue
      let last: DenyRule | undefined
      const consider = (rules: readonly DenyRule[] | undefined): void => {
        for (const rule of rules ?? []) {
          if (matches(rule) && (last === undefined || rule.line > last.line)) last = rule
        }
      }
      consider(file.byMultihash.get(multihash))
      for (const { code, size } of file.hashFunctions.values()) {
        consider(file.doubleHashes.get(doubleHash(code, size, multihash)))
        if (path !== '') consider(file.doubleHashes.get(doubleHash(code, size, `${multihash}/${path}`)))
      }
      if (file.legacyHashes.size > 0) {
        legacyCid ??= cid.toV1().toString(base32)
        consider(file.legacyHashes.get(legacyDoubleHash(`${legacyCid}/`)))
        if (path !== '') consider(file.legacyHashes.get(legacyDoubleHash(`${legacyCid}/${path}`)))
      }
      if (last !== undefined) return last.allow ? undefined : { file: file.name, rule: last }
    }
    return undefined
  }
}
