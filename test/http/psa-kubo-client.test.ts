import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { fixture } from '../support/fixtures.ts'
import { createIdentity, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'
import { startKubo, type KuboNode } from '../support/kubo.ts'
import { createScratchDatabase } from '../support/postgres-server.ts'

/**
 * Kubo's own remote-pinning client (`ipfs pin remote …`, boxo's
 * pinning/remote/client) against Heimdall's /psa: an offline Kubo on
 * loopback as the client, Heimdall on the embedded node as the service.
 */
describe.skipIf(inject('kuboBin') === '')('Kubo\'s `ipfs pin remote` against /psa', () => {
  let t: TestHeimdall
  let kubo: KuboNode
  let url: string
  let drop: () => Promise<void>
  let token: string
  let root: string

  beforeAll(async () => {
    const scratch = await createScratchDatabase(inject('postgresUrl'))
    drop = scratch.drop
    t = await startTestHeimdall({ DATABASE_URL: scratch.url, PSA_FETCH_TIMEOUT_SECONDS: '2' })
    ;({ url } = await t.listen())
    kubo = await startKubo(inject('kuboBin'))
    token = (await createIdentity(t.request)).token
    const res = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', fixture('glb/BoxTextured.glb'), 'box.glb').expect(200)
    root = (res.body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
    await kubo.cli('pin', 'remote', 'service', 'add', 'heimdall', `${url}/psa`, token)
  })
  afterAll(async () => {
    await kubo.stop()
    await t.close()
    await drop()
  })

  const json = (out: string): Array<Record<string, unknown>> => out.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>)

  it('adds content Heimdall holds (pinned at once), lists it with filters, and removes it', async () => {
    const added = json(await kubo.cli('pin', 'remote', 'add', '--service=heimdall', '--name=box avatar', '--enc=json', root))
    expect(added).toEqual([{ Status: 'pinned', Cid: root, Name: 'box avatar' }])
    expect(await t.heimdall.backend.isPinned(CID.parse(root))).toBe(true)

    expect(json(await kubo.cli('pin', 'remote', 'ls', '--service=heimdall', '--enc=json'))).toEqual([{ Status: 'pinned', Cid: root, Name: 'box avatar' }])
    expect(json(await kubo.cli('pin', 'remote', 'ls', '--service=heimdall', '--name=box avatar', '--enc=json'))).toHaveLength(1)
    expect(json(await kubo.cli('pin', 'remote', 'ls', '--service=heimdall', '--name=box', '--enc=json'))).toHaveLength(0)
    expect(json(await kubo.cli('pin', 'remote', 'ls', '--service=heimdall', `--cid=${root}`, '--status=pinned,failed', '--enc=json'))).toHaveLength(1)
    expect(json(await kubo.cli('pin', 'remote', 'ls', '--service=heimdall', '--status=queued', '--enc=json'))).toHaveLength(0)

    const stat = JSON.parse(await kubo.cli('pin', 'remote', 'service', 'ls', '--stat', '--enc=json')) as { RemoteServices: Array<{ Service: string, Stat: { Status: string, PinCount: Record<string, number> } }> }
    expect(stat.RemoteServices).toEqual([expect.objectContaining({ Service: 'heimdall', Stat: { Status: 'valid', PinCount: { Queued: 0, Pinning: 0, Pinned: 1, Failed: 0 } } })])

    await kubo.cli('pin', 'remote', 'rm', '--service=heimdall', `--cid=${root}`)
    expect(json(await kubo.cli('pin', 'remote', 'ls', '--service=heimdall', '--enc=json'))).toHaveLength(0)
    // The upload still references the root: it stays pinned.
    expect(await t.heimdall.backend.isPinned(CID.parse(root))).toBe(true)
  })

  it('content nobody can provide: queued or pinning in the background, then failed; a waiting add reports the failure', async () => {
    const cid = CID.create(1, raw.code, await sha256.digest(crypto.getRandomValues(new Uint8Array(32)))).toString()
    const added = json(await kubo.cli('pin', 'remote', 'add', '--service=heimdall', '--background', '--name=lost', '--enc=json', cid))
    expect(added).toHaveLength(1)
    expect(['queued', 'pinning']).toContain(added[0]?.Status)
    expect(json(await kubo.cli('pin', 'remote', 'ls', '--service=heimdall', '--status=queued,pinning', '--enc=json'))).toHaveLength(1)
    await new Promise((resolve) => setTimeout(resolve, 3000))
    expect(json(await kubo.cli('pin', 'remote', 'ls', '--service=heimdall', '--status=failed', '--enc=json'))).toEqual([{ Status: 'failed', Cid: cid, Name: 'lost' }])

    const other = CID.create(1, raw.code, await sha256.digest(crypto.getRandomValues(new Uint8Array(32)))).toString()
    await expect(kubo.cli('pin', 'remote', 'add', '--service=heimdall', other)).rejects.toThrow(/remote service failed to pin requestid=/)

    await kubo.cli('pin', 'remote', 'rm', '--service=heimdall', '--status=failed', '--force')
    expect(json(await kubo.cli('pin', 'remote', 'ls', '--service=heimdall', '--status=queued,pinning,pinned,failed', '--enc=json'))).toHaveLength(0)
  })

  it('a bad token is refused, and Kubo says so', async () => {
    await kubo.cli('pin', 'remote', 'service', 'add', 'wrong', `${url}/psa`, 'not-a-token')
    await expect(kubo.cli('pin', 'remote', 'ls', '--service=wrong')).rejects.toThrow(/401|UNAUTHORIZED|unauthorized/i)
  })

  it('an API key with the pin scope is a service token too; one without it is refused with 403', async () => {
    const key = async (scopes: string[]) => ((await t.request.post('/account/keys').set('Authorization', `Bearer ${token}`).send({ name: scopes.join('+'), scopes }).expect(201)).body as { key: string }).key
    await kubo.cli('pin', 'remote', 'service', 'add', 'heimdall-key', `${url}/psa`, await key(['pin']))
    expect(json(await kubo.cli('pin', 'remote', 'add', '--service=heimdall-key', '--name=by key', '--enc=json', root))).toEqual([{ Status: 'pinned', Cid: root, Name: 'by key' }])
    expect(json(await kubo.cli('pin', 'remote', 'ls', '--service=heimdall-key', '--name=by key', '--enc=json'))).toHaveLength(1)
    await kubo.cli('pin', 'remote', 'rm', '--service=heimdall-key', '--name=by key')
    await kubo.cli('pin', 'remote', 'service', 'add', 'heimdall-upload-key', `${url}/psa`, await key(['upload', 'list']))
    await expect(kubo.cli('pin', 'remote', 'ls', '--service=heimdall-upload-key')).rejects.toThrow(/403|INSUFFICIENT_SCOPE/)
  })

  it('the peer key in DATA_DIR is a libp2p Ed25519 key Kubo reads, and its peer id is the delegates\'', async () => {
    const out = await kubo.cli('key', 'import', '--format=libp2p-protobuf-cleartext', '--ipns-base=b58mh', 'heimdall-peer', join(t.dataDir, 'peer-key'))
    const status = (await t.request.post('/psa/pins').set('Authorization', `Bearer ${token}`).send({ cid: root }).expect(202)).body as { delegates: string[] }
    expect(status.delegates[0]?.endsWith(`/p2p/${out.trim()}`)).toBe(true)
  })
})
