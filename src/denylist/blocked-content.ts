import { CID } from 'multiformats/cid'
import type { BlockedBy, Denylist } from './denylist.ts'

/** One node of stored content: its path below the root (`''` for the root) and its CID. */
export interface ContentNode {
  path: string
  cid: CID | string
}

/**
 * Whether content rooted at `root` is blocked: the root and every node in it
 * by CID, and every node's path below the root (an upload's files and
 * folders, as its import reported them or its record lists them).
 */
export function blockedContent (denylist: Denylist, root: CID, nodes: Iterable<ContentNode>): BlockedBy | undefined {
  if (denylist.empty) return undefined
  const rootBlocked = denylist.checkCid(root)
  if (rootBlocked !== undefined) return rootBlocked
  for (const node of nodes) {
    if (node.path === '') continue
    const cid = typeof node.cid === 'string' ? CID.parse(node.cid) : node.cid
    const blocked = denylist.checkCid(cid) ?? denylist.checkPath(root, node.path.split('/'))
    if (blocked !== undefined) return blocked
  }
  return undefined
}
