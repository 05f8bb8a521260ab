import { CID } from 'multiformats/cid'
import type { Logger } from 'pino'
import type { BlockedContentRepository } from '../db/blocked-content-repository.ts'
import { blockedContent } from '../denylist/blocked-content.ts'
import type { Denylist } from '../denylist/denylist.ts'
import { rootForms } from '../ipfs/cid-forms.ts'

export interface DenylistEnforcerOptions {
  denylist: Denylist
  blocked: BlockedContentRepository
  /** The pin changes of uploads: the same per-root lock and pin journal. */
  pins: {
    changePin: <T>(rootCid: string, work: () => Promise<T>) => Promise<T>
    releaseIfUnreferenced: (rootCid: string) => Promise<boolean>
    fenceOthers: (rootCid: string) => Promise<void>
  }
  /** Whether this instance's node pins a root: another instance may have recorded the take-down first. */
  isPinned: (rootCid: string) => Promise<boolean>
  logger: Logger
  /** Told when content was taken down, e.g. to empty the gateway's caches. */
  onTakenDown?: () => void
  /** Each root as it is recorded taken down, before it is unpinned: the gateway refuses it from then on. */
  onBlocked?: (rootCid: string) => void
}

/**
 * Takes down what is already stored once a denylist names it: every root
 * held by an upload or a pin request is checked (the root, and the files and
 * folders its uploads recorded); a blocked one is recorded in blocked_roots
 * (so nothing counts as referencing it), its live pin requests fail with a
 * reason, and it is unpinned, for garbage collection to remove its blocks.
 * Runs after every change of the lists; the gateway refuses blocked content
 * from the moment the list is read, whether or not this has finished.
 */
export class DenylistEnforcer {
  readonly #options: DenylistEnforcerOptions

  constructor (options: DenylistEnforcerOptions) {
    this.#options = options
  }

  /** Checks everything held against the lists in force; the number of roots taken down. */
  async enforce (): Promise<number> {
    const { denylist, blocked, pins, logger } = this.#options
    if (denylist.empty) return 0
    let takenDown = 0
    for await (const held of blocked.held()) {
      const by = blockedContent(denylist, CID.parse(held.rootCid), held.entries)
      if (by === undefined) continue
      await pins.changePin(held.rootCid, async () => {
        // First: a record of the root given up on that still commits would lift the block it is about to get.
        await pins.fenceOthers(held.rootCid)
        await blocked.block(held.rootCid, { rule: by.rule.text, list: by.file })
        this.#options.onBlocked?.(held.rootCid)
        await blocked.failPinRequests(rootForms(held.rootCid), 'the content is blocked on this node by its operator')
        await pins.releaseIfUnreferenced(held.rootCid)
      })
      logger.warn({ rootCid: held.rootCid, rule: by.rule.text, list: by.file }, 'content taken down: it is on a denylist')
      takenDown++
    }
    // Roots another instance (sharing the database) took down first: this node unpins its own copy too.
    for await (const rootCid of blocked.blockedRoots()) {
      if (!await this.#options.isPinned(rootCid)) continue
      await pins.changePin(rootCid, async () => { await pins.fenceOthers(rootCid); await pins.releaseIfUnreferenced(rootCid) })
      logger.warn({ rootCid }, 'content taken down here too: another instance found it on a denylist')
      takenDown++
    }
    if (takenDown > 0) this.#options.onTakenDown?.()
    return takenDown
  }
}
