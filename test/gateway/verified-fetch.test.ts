import type { IncomingMessage } from 'node:http'
import { withHTTP } from '@helia/http'
import type { Router } from '@helia/interface'
import { createVerifiedFetchWithHelia, type VerifiedFetch } from '@helia/verified-fetch'
import * as dagPb from '@ipld/dag-pb'
import { createHeliaLight } from 'helia'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { AVATAR_FST, fixture } from '../support/fixtures.ts'
import { appBackends } from '../support/backends.ts'
import { noise, startGatewayContent } from '../support/gateway-content.ts'
import type { TestHeimdall } from '../support/heimdall-harness.ts'

const BIG = noise(2_621_440 + 13, 11) // three raw leaves under one dag-pb node: ranges cross blocks

/**
 * A content router that knows nobody. helia 7's routing asks its fallback
 * routers (where withHTTP puts `recursiveGateways`) only once its other
 * routers have finished, and with no other router it waits for ever: this
 * one finishes at once, so the gateway list below is asked, and only it.
 */
const NO_ROUTING: Router = {
  name: 'no-routing',
  async * findProviders () {} // no provider to give: the fallback list is asked next
}

/**
 * The client side of the trustless gateway: @helia/verified-fetch over an
 * HTTP-only Helia whose one source of blocks is Heimdall (no libp2p, no
 * delegated routers, no public gateway). Every block it gets is checked
 * against its CID; a wrong byte would be a failed fetch, not wrong bytes.
 */
for (const backend of appBackends()) describe.skipIf(!backend.available)(`@helia/verified-fetch with Heimdall over ${backend.name} as its only gateway`, () => {
  let t: TestHeimdall
  let stop: () => Promise<void>
  let gateway: string
  let verifiedFetch: VerifiedFetch
  /** What Heimdall's gateway was asked for, and anything fetched off loopback (by anyone: it must stay empty). */
  const asked: string[] = []
  const offLoopback: string[] = []
  let hero: string
  let heroFiles: Map<string, string>
  let bigCid: string

  beforeAll(async () => {
    // big/data.bin is too big for an upload's content checks to take as an asset: imported and pinned as an upload's files are.
    ;({ t, stop, hero, heroFiles, bigCid } = await startGatewayContent(backend, { big: BIG, index: false }))
    const listening = await t.listen()
    gateway = listening.url

    listening.server.on('request', (req: IncomingMessage) => { asked.push(req.url ?? '') })
    // Heimdall over Kubo fetches from Kubo on loopback too: anything else is refused and remembered.
    const realFetch = globalThis.fetch
    vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const url = new URL(input instanceof Request ? input.url : input.toString())
      if (url.hostname !== '127.0.0.1') {
        offLoopback.push(url.href)
        throw new Error(`refused to reach ${url.href}: the test stays on loopback`)
      }
      return realFetch(input, init)
    })
    const helia = withHTTP(createHeliaLight({ routers: [NO_ROUTING] }), {
      delegatedRouters: [],
      recursiveGateways: [gateway],
      allowInsecure: true,
      allowLocal: true
    })
    await helia.start()
    verifiedFetch = await createVerifiedFetchWithHelia(helia)
  })
  afterAll(async () => {
    vi.restoreAllMocks()
    if (verifiedFetch !== undefined) await verifiedFetch.stop()
    if (stop !== undefined) await stop()
  })

  const bytesOf = async (res: Response): Promise<Buffer> => Buffer.from(await res.arrayBuffer())

  it('fetches a file by its CID', async () => {
    const res = await verifiedFetch(`ipfs://${heroFiles.get('hero/box.fbx') ?? ''}`)
    expect(res.status).toBe(200)
    expect(Buffer.compare(await bytesOf(res), fixture('fbx/box-binary.fbx'))).toBe(0)
  })

  it('fetches files inside the upload\'s directory by path', async () => {
    const fst = await verifiedFetch(`ipfs://${hero}/avatar.fst`)
    expect(fst.status).toBe(200)
    expect((await bytesOf(fst)).toString()).toBe(AVATAR_FST)
    const png = await verifiedFetch(`ipfs://${hero}/textures/skin.png`)
    expect(png.status).toBe(200)
    expect(png.headers.get('x-ipfs-roots')).toBe([hero, heroFiles.get('hero/textures'), heroFiles.get('hero/textures/skin.png')].join(','))
    expect(Buffer.compare(await bytesOf(png), fixture('gltf/BoxTextured/CesiumLogoFlat.png'))).toBe(0)
  })

  it('fetches a directory: its verified node links each uploaded entry by name and CID', async () => {
    const res = await verifiedFetch(`ipfs://${hero}/textures/`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/vnd.ipld.dag-pb')
    const links = dagPb.decode(await bytesOf(res)).Links.map((link) => [link.Name, link.Hash.toString()])
    expect(links).toEqual([['skin.png', heroFiles.get('hero/textures/skin.png')]])
    const top = dagPb.decode(await bytesOf(await verifiedFetch(`ipfs://${hero}`)))
    expect(top.Links.map((link) => [link.Name, link.Hash.toString()])).toEqual(
      ['avatar.fst', 'box.fbx', 'textures'].map((name) => [name, heroFiles.get(`hero/${name}`)])
    )
  })

  it.each([
    ['a range inside the first block', 'bytes=10-99', 10, 99],
    ['a range across two blocks', 'bytes=1048570-1048590', 1048570, 1048590],
    ['a range in the last block, open-ended', `bytes=${2 * 1048576 + 5}-`, 2 * 1048576 + 5, BIG.length - 1],
    ['a suffix range', 'bytes=-20', BIG.length - 20, BIG.length - 1]
  ])('fetches %s (Range) of a 2.5 MiB file', async (_name, range, first, last) => {
    const res = await verifiedFetch(`ipfs://${bigCid}`, { headers: { Range: range } })
    expect(res.status).toBe(206)
    expect(res.headers.get('content-range')).toBe(`bytes ${first}-${last}/${BIG.length}`)
    expect(Buffer.compare(await bytesOf(res), BIG.subarray(first, last + 1))).toBe(0)
  })

  it('fetches the whole 2.5 MiB file and a range of an uploaded file by path', async () => {
    expect(Buffer.compare(await bytesOf(await verifiedFetch(`ipfs://${bigCid}`)), BIG)).toBe(0)
    const res = await verifiedFetch(`ipfs://${hero}/box.fbx`, { headers: { Range: 'bytes=0-22' } })
    expect(res.status).toBe(206)
    expect(Buffer.compare(await bytesOf(res), fixture('fbx/box-binary.fbx').subarray(0, 23))).toBe(0)
  })

  it('got every block from Heimdall, and nothing reached past loopback', () => {
    expect(asked.filter((url) => url.startsWith('/ipfs/')).length).toBeGreaterThan(0)
    expect(offLoopback).toEqual([])
  })
})
