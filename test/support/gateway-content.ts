import type { CID } from 'multiformats/cid'
import type { ImportCandidate } from '../../src/ipfs/ipfs-backend.ts'
import type { AppBackend } from './backends.ts'
import { avatarBundle } from './fixtures.ts'
import { createIdentity, startTestHeimdall, type TestHeimdall } from './heimdall-harness.ts'

/** Bytes that do not repeat, so every 1 MiB chunk is its own block. */
export function noise (size: number, seed: number): Buffer {
  const out = Buffer.alloc(size)
  let x = seed
  for (let i = 0; i < size; i++) { x = (x * 1103515245 + 12345) >>> 0; out[i] = x >>> 24 }
  return out
}

export const INDEX_HTML = Buffer.from('<!doctype html><title>hi</title><p>index</p>\n')

export async function * one (bytes: Buffer): AsyncIterable<Uint8Array> { yield await Promise.resolve(bytes) }

export interface GatewayContent {
  t: TestHeimdall
  /** The token of the identity that uploaded the hero bundle. */
  token: string
  /** The avatar bundle uploaded as hero.zip: its root, and every item of the answer by Name. */
  hero: string
  heroFiles: Map<string, string>
  /** A pinned directory holding big/data.bin (and site/index.html when asked for). */
  tree: string
  /** big/data.bin's CID. */
  bigCid: string
  /** Stops the app, then its backend. */
  stop: () => Promise<void>
}

/**
 * The gateway suites' content over one backend: an avatar bundle uploaded as
 * a creator does, and a tree too big for an upload's content checks,
 * imported and pinned as an upload's files are.
 */
export async function startGatewayContent (backend: AppBackend, options: { big: Buffer, index: boolean }): Promise<GatewayContent> {
  const started = await backend.start()
  const t = await startTestHeimdall(started.env).catch(async (err: unknown) => { await started.stop(); throw err })
  const stop = async (): Promise<void> => { await t.close(); await started.stop() }
  try {
    const { token } = await createIdentity(t.request)
    const bundle = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', await avatarBundle(), 'hero.zip').expect(200)
    const heroFiles = new Map((bundle.body as Array<{ Name: string, Hash: string }>).map((i) => [i.Name, i.Hash]))
    const { big } = options
    const candidates: ImportCandidate[] = [
      { path: 'big/data.bin', content: one(big) },
      ...(options.index ? [{ path: 'site/index.html', content: one(INDEX_HTML) }] : [])
    ]
    const nodes = await t.heimdall.backend.importTree(candidates, { profile: 'unixfs-v1-2025' })
    const tree = nodes.at(-1)?.cid as CID
    await t.heimdall.backend.pin(tree)
    return { t, token, hero: heroFiles.get('hero') ?? '', heroFiles, tree: tree.toString(), bigCid: nodes.find((n) => n.path === 'big/data.bin')?.cid.toString() ?? '', stop }
  } catch (err) {
    await stop()
    throw err
  }
}
