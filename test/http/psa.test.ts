import { stat } from 'node:fs/promises'
import { createServer } from 'node:http'
import supertest from 'supertest'
import { join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import { base16 as base16Codec } from 'multiformats/bases/base16'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { resolvePeerIdentity } from '../../src/ipfs/peer-identity.ts'
import { appBackends } from '../support/backends.ts'
import { fixture } from '../support/fixtures.ts'
import { createIdentity, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'
import { createScratchDatabase } from '../support/postgres-server.ts'

/** A scratch database on the suite's PostgreSQL (the embedded engine has tests of its own), dropped afterwards. */
async function scratchDatabase (): Promise<{ env: Record<string, string>, drop: () => Promise<void> }> {
  const scratch = await createScratchDatabase(inject('postgresUrl'))
  return { env: { DATABASE_URL: scratch.url }, drop: scratch.drop }
}

/** A CID no node has: the sha256 of bytes made up here. */
async function unknownCid (): Promise<string> {
  return CID.create(1, raw.code, await sha256.digest(crypto.getRandomValues(new Uint8Array(32)))).toString()
}

const PEER_DELEGATE = /^\/(dns|ip4|ip6)\/[^/]+\/tcp\/\d+\/p2p\/12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/

for (const backend of appBackends()) {
  describe.skipIf(!backend.available)(`the Pinning Service API, over ${backend.name}`, () => {
    let t: TestHeimdall
    let stopBackend: () => Promise<void>
    let dropDatabase: () => Promise<void>
    let kuboApi: string | undefined
    beforeAll(async () => {
      const started = await backend.start()
      stopBackend = started.stop
      kuboApi = started.env.IPFS_API_URL
      const db = await scratchDatabase()
      dropDatabase = db.drop
      t = await startTestHeimdall({ ...started.env, ...db.env, PSA_FETCH_TIMEOUT_SECONDS: '2' })
    })
    afterAll(async () => { await t.close(); await stopBackend(); await dropDatabase() })

    const upload = async (token: string, data: Buffer, name: string): Promise<string> => {
      const res = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', data, name).expect(200)
      return (res.body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
    }
    const pinned = async (cid: string): Promise<boolean> => t.heimdall.backend.isPinned(CID.parse(cid))
    // The spec's answers; a failure answers `error` instead.
    interface Failure { error: { reason: string, details: string } }
    interface PinStatusAnswer extends Failure { requestid: string, status: string, created: string, pin: { cid: string, name?: string, meta?: Record<string, string> }, delegates: string[], info: { status_details?: string } }
    interface PinResultsAnswer extends Failure { count: number, results: PinStatusAnswer[] }
    const psa = (token: string) => ({
      add: async (pin: Record<string, unknown>, status = 202) => (await t.request.post('/psa/pins').set('Authorization', `Bearer ${token}`).send(pin).expect(status)).body as PinStatusAnswer,
      get: async (id: string, status = 200) => (await t.request.get(`/psa/pins/${id}`).set('Authorization', `Bearer ${token}`).expect(status)).body as PinStatusAnswer,
      ls: async (query: string, status = 200) => (await t.request.get(`/psa/pins?${query}`).set('Authorization', `Bearer ${token}`).expect(status)).body as PinResultsAnswer,
      rm: async (id: string, status = 202) => { await t.request.delete(`/psa/pins/${id}`).set('Authorization', `Bearer ${token}`).expect(status) },
      replace: async (id: string, pin: Record<string, unknown>, status = 202) => (await t.request.post(`/psa/pins/${id}`).set('Authorization', `Bearer ${token}`).send(pin).expect(status)).body as PinStatusAnswer
    })
    const waitFor = async (check: () => Promise<boolean>, ms = 10_000): Promise<void> => {
      const deadline = Date.now() + ms
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error('timed out')
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }

    it('401 in the spec\'s error shape without a token, with a bad one, or with a token only in the body', async () => {
      for (const res of [
        await t.request.get('/psa/pins'),
        await t.request.get('/psa/pins').set('Authorization', 'Bearer not-a-token'),
        await t.request.post('/psa/pins').send({ cid: await unknownCid(), token: 'x' })
      ]) {
        expect(res.status).toBe(401)
        expect(res.body).toEqual({ error: { reason: 'UNAUTHORIZED', details: expect.any(String) } })
      }
    })

    it('answers a browser app on another origin: the CORS preflight without credentials, then the call with its bearer token', async () => {
      const origin = 'https://app.example'
      const preflight = await t.request.options('/psa/pins').set({ Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type' }).expect(204)
      expect(preflight.headers['access-control-allow-origin']).toBe('*')
      expect(preflight.headers['access-control-allow-methods']).toContain('POST')
      expect(preflight.headers['access-control-allow-headers']?.toLowerCase().split(/,\s*/)).toEqual(expect.arrayContaining(['authorization', 'content-type']))
      expect(preflight.headers['access-control-allow-credentials']).toBeUndefined()
      const { token } = await createIdentity(t.request, 'psa-cors')
      const listed = await t.request.get('/psa/pins').set({ Origin: origin, Authorization: `Bearer ${token}` }).expect(200)
      expect(listed.headers['access-control-allow-origin']).toBe('*')
      // A refusal is readable by the page too, with its reason.
      const refused = await t.request.get('/psa/pins').set({ Origin: origin }).expect(401)
      expect(refused.headers['access-control-allow-origin']).toBe('*')
      expect(refused.headers['access-control-expose-headers']).toContain('WWW-Authenticate')
    })

    it('pins content it holds at once, through the pin journal; a delete unpins only what nothing else references', async () => {
      const alice = await createIdentity(t.request)
      const bob = await createIdentity(t.request)
      const root = await upload(alice.token, fixture('glb/BoxTextured.glb'), 'box.glb')
      const status = await psa(bob.token).add({ cid: root, name: 'box', meta: { app: 'test' } })
      expect(status).toMatchObject({ status: 'pinned', pin: { cid: root, name: 'box', meta: { app: 'test' } }, info: {} })
      expect(status.requestid).toMatch(/^[0-9a-f-]{36}$/)
      expect(new Date(status.created).toISOString()).toBe(status.created)
      expect(status.delegates.length).toBeGreaterThanOrEqual(1)
      for (const d of status.delegates) expect(d).toMatch(PEER_DELEGATE)
      // The node that holds the pins: over Kubo, Kubo's peer id (its own `id`), not Heimdall's key.
      const holder = kuboApi === undefined
        ? (await resolvePeerIdentity(t.dataDir)).peerId
        : ((await (await fetch(`${kuboApi}/api/v0/id`, { method: 'POST' })).json()) as { ID: string }).ID
      for (const d of status.delegates) expect(d.endsWith(`/p2p/${holder}`)).toBe(true)
      expect(await psa(bob.token).get(status.requestid)).toEqual(status)
      // Not someone else's to see or delete.
      expect((await psa(alice.token).get(status.requestid, 404)).error.reason).toBe('NOT_FOUND')
      await psa(alice.token).rm(status.requestid, 404)

      // Alice's upload of the same root and Bob's request each keep it pinned.
      const id = (await t.request.get('/uploads').set('Authorization', `Bearer ${alice.token}`).expect(200)).body.uploads[0].id as number
      await t.request.delete(`/uploads/${id}`).set('Authorization', `Bearer ${alice.token}`).expect(204)
      expect(await pinned(root)).toBe(true)
      const second = await psa(bob.token).add({ cid: root })
      await psa(bob.token).rm(status.requestid)
      await psa(bob.token).get(status.requestid, 404)
      expect(await pinned(root)).toBe(true)
      await psa(bob.token).rm(second.requestid)
      expect(await pinned(root)).toBe(false)
      const [journal] = await t.heimdall.database.knex('pin_intents').count<Array<{ n: string | number }>>({ n: '*' })
      expect(Number(journal?.n)).toBe(0)
    })

    it('checks content it holds but no pin holds, as fetched content: bytes uploaded as a file, read as a folder, do not pin pages served as themselves', async () => {
      const mallory = await createIdentity(t.request)
      // Any bytes are accepted as a `.bin`; the node keeps them by their hash alone, whatever the CID's codec.
      const page = await t.request.post('/upload').set('Authorization', `Bearer ${mallory.token}`).attach('file', Buffer.from('<!doctype html><title>Sign in</title><form>password</form>'), 'page.bin').expect(200)
      const pageCid = CID.parse((page.body as Array<{ Name: string, Hash: string }>).find((item) => item.Name === 'page/page.bin')?.Hash ?? '')
      const svg = CID.createV1(raw.code, identity.digest(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>')))
      const folder = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: [{ Name: 'login.html', Hash: pageCid, Tsize: 60 }, { Name: 'e.svg', Hash: svg, Tsize: 40 }] }))
      const folderCid = CID.createV1(dagPb.code, await sha256.digest(folder))
      await upload(mallory.token, Buffer.from(folder), 'folder.bin')

      const status = await psa(mallory.token).add({ cid: folderCid.toString() })
      expect(status.status).toBe('failed')
      expect(status.info.status_details).toMatch(/^content refused: the content has files of types that are not accepted: (login\.html; e\.svg|e\.svg; login\.html)$/)
      expect(await pinned(folderCid.toString())).toBe(false)
      // So its pages stay downloads of plain text, as any content no upload or pin vouches for.
      const served = await t.request.get(`/ipfs/${folderCid.toString()}/login.html`).expect(200)
      expect(served.headers['content-type']).toBe('text/plain; charset=utf-8')
      expect(served.headers['content-disposition']).toMatch(/^attachment/)
      // Pinned on the node with nothing recorded for it (over Kubo an upload's add pins its root before the upload's
      // checks refuse it): checked all the same.
      await t.heimdall.backend.pin(folderCid)
      const pinnedMeanwhile = await psa(mallory.token).add({ cid: folderCid.toString() })
      expect(pinnedMeanwhile.status).toBe('failed')
      expect(pinnedMeanwhile.info.status_details).toMatch(/^content refused: the content has files of types that are not accepted/)
      await t.heimdall.backend.unpin(folderCid)

      // A file of an upload, held but not itself pinned, passes when named as what it is; unnamed, its type is unknown.
      const box = await t.request.post('/upload').set('Authorization', `Bearer ${mallory.token}`).attach('file', fixture('glb/BoxTextured.glb'), 'box.glb').expect(200)
      const boxFile = (box.body as Array<{ Name: string, Hash: string }>).find((item) => item.Name === 'box/box.glb')?.Hash ?? ''
      expect((await psa(mallory.token).add({ cid: boxFile })).info.status_details).toMatch(/give the pin request the file's name/)
      expect(await psa(mallory.token).add({ cid: boxFile, name: 'box.glb' })).toMatchObject({ status: 'pinned' })
      expect(await pinned(boxFile)).toBe(true)
    })

    it('a CIDv0 and its CIDv1 are one root: a request for the other spelling of an upload\'s root, deleted, leaves the upload pinned; listing by either finds it', async () => {
      const alice = await createIdentity(t.request)
      const mallory = await createIdentity(t.request)
      const root = await upload(alice.token, Buffer.from('v0 and v1 name one root'), 'note.obj')
      const v0 = CID.parse(root).toV0().toString()
      expect(v0).toMatch(/^Qm/)
      const request = await psa(mallory.token).add({ cid: v0 })
      expect(request).toMatchObject({ status: 'pinned', pin: { cid: v0 } })
      expect((await psa(mallory.token).ls(`cid=${root}`)).results.map((r) => r.requestid)).toEqual([request.requestid])
      await psa(mallory.token).rm(request.requestid)
      expect(await pinned(root)).toBe(true)
      await t.heimdall.collector.run()
      await t.request.get(`/ipfs/${root}/note.obj`).expect(200)
      // And the other way: an upload deleted while a request holds its CIDv0 keeps the pin.
      const second = await psa(mallory.token).add({ cid: v0 })
      const id = (await t.request.get('/uploads').set('Authorization', `Bearer ${alice.token}`).expect(200)).body.uploads[0].id as number
      await t.request.delete(`/uploads/${id}`).set('Authorization', `Bearer ${alice.token}`).expect(204)
      expect(await pinned(root)).toBe(true)
      await psa(mallory.token).rm(second.requestid)
      expect(await pinned(root)).toBe(false)
    })

    it('content it does not hold: queued or pinning, then failed after the timeout with the reason', async () => {
      const carol = await createIdentity(t.request)
      const cid = await unknownCid()
      const status = await psa(carol.token).add({ cid, name: 'nowhere' })
      expect(['queued', 'pinning']).toContain(status.status)
      await waitFor(async () => (await psa(carol.token).get(status.requestid)).status === 'failed')
      const failed = await psa(carol.token).get(status.requestid)
      expect(failed.info.status_details).toMatch(/^not found in time: .* within 2 s; /)
      expect(failed.info.status_details).toContain(backend.name.startsWith('Kubo') ? 'Kubo' : 'no IPFS networking')
      expect(await pinned(cid)).toBe(false)
      // Listed under `failed`, not under the default `pinned`.
      expect((await psa(carol.token).ls('')).count).toBe(0)
      expect((await psa(carol.token).ls('status=failed')).results.map((r: { requestid: string }) => r.requestid)).toEqual([status.requestid])
    })

    it('a pending request is pinned when its content arrives by upload', async () => {
      const dave = await createIdentity(t.request)
      const root = await upload(dave.token, fixture('glb/BoxTextured.glb'), 'again.glb')
      const id = (await t.request.get('/uploads').set('Authorization', `Bearer ${dave.token}`).expect(200)).body.uploads[0].id as number
      await t.request.delete(`/uploads/${id}`).set('Authorization', `Bearer ${dave.token}`).expect(204)
      await t.heimdall.collector.run()
      const status = await psa(dave.token).add({ cid: root })
      expect(['queued', 'pinning']).toContain(status.status)
      await upload(dave.token, fixture('glb/BoxTextured.glb'), 'again.glb')
      await waitFor(async () => (await psa(dave.token).get(status.requestid)).status === 'pinned', 1900)
    })

    it('pages with `before` over 16 requests without a duplicate; count is the total of the query', async () => {
      const erin = await createIdentity(t.request)
      const root = await upload(erin.token, fixture('glb/BoxTextured.glb'), 'paged.glb')
      const made = await Promise.all(Array.from({ length: 16 }, async (_, i) => psa(erin.token).add({ cid: root, name: `page-${i}` })))
      expect(new Set(made.map((m): string => m.created)).size).toBe(16)
      const seen: string[] = []
      let query = 'limit=5'
      for (;;) {
        const page = await psa(erin.token).ls(query)
        seen.push(...page.results.map((r: { requestid: string }) => r.requestid))
        const createds = page.results.map((r: { created: string }) => r.created)
        expect(createds).toEqual([...createds].sort().reverse())
        if (page.count === page.results.length) break
        query = `limit=5&before=${encodeURIComponent(createds.at(-1) ?? '')}`
      }
      expect(seen.length).toBe(16)
      expect(new Set(seen)).toEqual(new Set(made.map((m): string => m.requestid)))
      const newest = await psa(erin.token).ls('limit=1')
      expect(newest.count).toBe(16)
      expect(newest.results[0]?.created).toBe(made.map((m): string => m.created).sort().reverse()[0])
      const after = await psa(erin.token).ls(`after=${encodeURIComponent(newest.results[0]?.created ?? '')}`)
      expect(after.count).toBe(0)
    })

    it('filters by name in every match mode, by cid, by status and by meta', async () => {
      const fay = await createIdentity(t.request)
      const root = await upload(fay.token, fixture('glb/BoxTextured.glb'), 'named.glb')
      const p = psa(fay.token)
      const names = ['Avatar.fst', 'avatar.fst', 'My Avatar 50%', 'other']
      for (const name of names) await p.add({ cid: root, name, meta: { kind: name === 'other' ? 'x' : 'avatar', owner: 'fay' } })
      const namesOf = async (query: string): Promise<string[]> => ((await p.ls(query)).results as Array<{ pin: { name: string } }>).map((r) => r.pin.name).sort()
      expect(await namesOf('name=Avatar.fst')).toEqual(['Avatar.fst'])
      expect(await namesOf('name=Avatar.fst&match=exact')).toEqual(['Avatar.fst'])
      expect(await namesOf('name=AVATAR.FST&match=iexact')).toEqual(['Avatar.fst', 'avatar.fst'])
      expect(await namesOf('name=vatar&match=partial')).toEqual(['Avatar.fst', 'My Avatar 50%', 'avatar.fst'])
      expect(await namesOf('name=Avatar&match=partial')).toEqual(['Avatar.fst', 'My Avatar 50%'])
      expect(await namesOf('name=AVATAR&match=ipartial')).toEqual(['Avatar.fst', 'My Avatar 50%', 'avatar.fst'])
      expect(await namesOf(`name=${encodeURIComponent('50%')}&match=partial`)).toEqual(['My Avatar 50%'])
      expect(await namesOf(`name=${encodeURIComponent('_')}&match=ipartial`)).toEqual([])
      expect(await namesOf(`meta=${encodeURIComponent(JSON.stringify({ kind: 'x' }))}`)).toEqual(['other'])
      expect(await namesOf(`meta=${encodeURIComponent(JSON.stringify({ kind: 'avatar', owner: 'fay' }))}`)).toHaveLength(3)
      expect(await namesOf(`meta=${encodeURIComponent(JSON.stringify({ kind: 'none' }))}`)).toEqual([])
      // `cid` as the spec writes lists and as Kubo's client sends them; another encoding of the same CID matches.
      const other = await unknownCid()
      expect((await p.ls(`cid=${root}&cid=${other}`)).count).toBe(4)
      expect((await p.ls(`cid=${root},${other}`)).count).toBe(4)
      expect((await p.ls(`cid=${CID.parse(root).toString((await import('multiformats/bases/base36')).base36)}`)).count).toBe(4)
      expect((await p.ls('status=queued,pinning')).count).toBe(0)
      expect((await p.ls('status=pinned&status=failed&limit=1000')).count).toBe(4)
    })

    it('replace answers a new requestid and the old one is gone; the new content is pinned before the old is released', async () => {
      const gus = await createIdentity(t.request)
      const first = await upload(gus.token, fixture('glb/BoxTextured.glb'), 'first.glb')
      const secondRoot = await upload(gus.token, fixture('glb/BoxTextured.glb'), 'second.glb')
      const p = psa(gus.token)
      const original = await p.add({ cid: first, name: 'v1' })
      const replaced = await p.replace(original.requestid, { cid: secondRoot, name: 'v2' })
      expect(replaced.requestid).not.toBe(original.requestid)
      expect(replaced).toMatchObject({ status: 'pinned', pin: { cid: secondRoot, name: 'v2' } })
      await p.get(original.requestid, 404)
      await p.replace(original.requestid, { cid: secondRoot }, 404)
      expect((await p.ls('')).results.map((r: { requestid: string }) => r.requestid)).toEqual([replaced.requestid])
    })

    it('replaces of one request at once: one wins, the others are 404 and leave no request behind', async () => {
      const ida = await createIdentity(t.request)
      const first = await upload(ida.token, fixture('glb/BoxTextured.glb'), 'first.glb')
      const second = await upload(ida.token, Buffer.from(`// second ${Math.random()}\n`), 'second.js')
      const p = psa(ida.token)
      const original = await p.add({ cid: first, name: 'v1' })
      const answers = await Promise.all(Array.from({ length: 3 }, async (_, i) => t.request.post(`/psa/pins/${original.requestid}`).set('Authorization', `Bearer ${ida.token}`).send({ cid: second, name: `v${i + 2}` })))
      const won = answers.filter((a) => a.status === 202)
      expect(won).toHaveLength(1)
      expect(answers.filter((a) => a.status === 404)).toHaveLength(2)
      // Before, all three replacements stayed, two of them answered with a 404.
      const left = (await p.ls('status=queued,pinning,pinned,failed')).results.map((r: { requestid: string }) => r.requestid)
      expect(left).toEqual([(won[0]?.body as { requestid: string }).requestid])
      // And none still holds the replaced root for a request that lost.
      const holding = await t.heimdall.database.knex('pin_requests').whereNotNull('replaces_root_cid').select('request_id')
      expect(holding).toEqual([])
    })

    it('replace keeps the old root pinned while the new content is awaited, and releases it once the new request settles or goes', async () => {
      const kim = await createIdentity(t.request)
      const p = psa(kim.token)
      const only = async (name: string): Promise<string> => {
        const root = await upload(kim.token, Buffer.from(`// ${name} ${Math.random()}\n`), `${name}.js`)
        // The upload goes: the pin request alone holds its root.
        const added = await p.add({ cid: root })
        expect(added.status).toBe('pinned')
        const { id } = await t.heimdall.database.knex('uploads').where({ root_cid: root }).first<{ id: number }>('id')
        await t.request.delete(`/uploads/${id}`).set('Authorization', `Bearer ${kim.token}`).expect(204)
        expect(await pinned(root)).toBe(true)
        return added.requestid + ' ' + root
      }
      const [original, oldRoot] = (await only('replaced')).split(' ') as [string, string]
      const replaced = await p.replace(original, { cid: await unknownCid() })
      expect(['queued', 'pinning']).toContain(replaced.status)
      await p.get(original, 404)
      expect(await pinned(oldRoot)).toBe(true)
      await waitFor(async () => (await p.get(replaced.requestid)).status === 'failed')
      await waitFor(async () => !(await pinned(oldRoot)))
      // A pending replacement deleted: the root it kept goes with it.
      const [second, secondRoot] = (await only('deleted')).split(' ') as [string, string]
      const pending = await p.replace(second, { cid: await unknownCid() })
      expect(await pinned(secondRoot)).toBe(true)
      await p.rm(pending.requestid)
      expect(await pinned(secondRoot)).toBe(false)
    })

    it('takes what real clients send: 50 origins from an online Kubo (the 20 likeliest reached kept), a CID in base16, a name of 200 emoji', async () => {
      const ivy = await createIdentity(t.request)
      const root = await upload(ivy.token, fixture('glb/BoxTextured.glb'), 'origins.glb')
      const p = psa(ivy.token)
      const peer = '12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf'
      const loopback = Array.from({ length: 20 }, (_, i) => `/ip4/127.0.0.1/tcp/${4001 + i}/p2p/${peer}`)
      const privateOnes = Array.from({ length: 20 }, (_, i) => `/ip4/192.168.1.${i + 1}/tcp/4001/p2p/${peer}`)
      const publicOnes = Array.from({ length: 9 }, (_, i) => `/ip4/203.0.113.${i + 1}/tcp/4001/p2p/${peer}`)
      // A name is dialed only where the operator named it (the dial policy): kept after every address.
      const named = `/dns4/node.example.org/tcp/4001/p2p/${peer}`
      const added = await p.add({ cid: root, origins: [named, ...loopback, ...privateOnes, ...publicOnes, ...publicOnes] })
      expect(added.status).toBe('pinned')
      expect((added.pin as { origins?: string[] }).origins).toEqual([...publicOnes, ...privateOnes.slice(0, 11)])
      // Any multibase, answered as the client wrote it, found by any other.
      const base16 = CID.parse(root).toString(base16Codec.encoder)
      const hex = await p.add({ cid: base16, name: '😀'.repeat(200) })
      expect(hex).toMatchObject({ status: 'pinned', pin: { cid: base16, name: '😀'.repeat(200) } })
      expect((await p.ls(`cid=${root}&name=${encodeURIComponent('😀'.repeat(200))}`)).results.map((r) => r.requestid)).toEqual([hex.requestid])
      expect((await p.ls(`cid=${base16}`)).count).toBe(2)
    })

    it('hostile input is a 400 in the spec\'s error shape, never a 5xx, and records nothing', async () => {
      const hal = await createIdentity(t.request)
      const p = psa(hal.token)
      const cid = await unknownCid()
      const bad: Array<() => Promise<{ status: number, body: unknown }>> = [
        async () => t.request.post('/psa/pins').set('Authorization', `Bearer ${hal.token}`).send({ cid: 'not-a-cid' }),
        async () => t.request.post('/psa/pins').set('Authorization', `Bearer ${hal.token}`).send({ cid: `${cid}x` }),
        async () => t.request.post('/psa/pins').set('Authorization', `Bearer ${hal.token}`).send({ cid, name: 'n'.repeat(256) }),
        async () => t.request.post('/psa/pins').set('Authorization', `Bearer ${hal.token}`).send({ cid, name: '😀'.repeat(256) }),
        // An identity CID with 100 bytes inline: valid, but longer than the 128 characters recorded.
        async () => t.request.post('/psa/pins').set('Authorization', `Bearer ${hal.token}`).send({ cid: CID.createV1(0x55, identity.digest(new Uint8Array(100).fill(7))).toString() }),
        async () => t.request.post('/psa/pins').set('Authorization', `Bearer ${hal.token}`).send({ cid, origins: Array.from({ length: 1001 }, (_, i) => `/ip4/10.0.0.1/tcp/${i}`) }),
        async () => t.request.post('/psa/pins').set('Authorization', `Bearer ${hal.token}`).send({ cid, meta: Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`k${i}`, 'v'])) }),
        async () => t.request.post('/psa/pins').set('Authorization', `Bearer ${hal.token}`).send({ cid, meta: { k: 1 } }),
        // 5 keys of 4,000 characters: each key and value within the spec, 20 KB in all (past 16 KiB).
        async () => t.request.post('/psa/pins').set('Authorization', `Bearer ${hal.token}`).send({ cid, meta: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`k${i}`, 'v'.repeat(4000)])) }),
        async () => t.request.post('/psa/pins').set('Authorization', `Bearer ${hal.token}`).send({ cid, origins: 'nope' }),
        async () => t.request.post('/psa/pins').set('Authorization', `Bearer ${hal.token}`).send({}),
        async () => t.request.post('/psa/pins').set('Authorization', `Bearer ${hal.token}`).type('json').send('{"cid":'),
        async () => t.request.post('/psa/pins').set('Authorization', `Bearer ${hal.token}`).send([cid]),
        async () => t.request.get('/psa/pins?limit=0').set('Authorization', `Bearer ${hal.token}`),
        async () => t.request.get('/psa/pins?limit=1001').set('Authorization', `Bearer ${hal.token}`),
        async () => t.request.get('/psa/pins?limit=-1').set('Authorization', `Bearer ${hal.token}`),
        async () => t.request.get('/psa/pins?limit=ten').set('Authorization', `Bearer ${hal.token}`),
        async () => t.request.get('/psa/pins?limit=1&limit=2').set('Authorization', `Bearer ${hal.token}`),
        async () => t.request.get('/psa/pins?cid=not-a-cid').set('Authorization', `Bearer ${hal.token}`),
        async () => t.request.get(`/psa/pins?cid=${Array.from({ length: 11 }, () => cid).join(',')}`).set('Authorization', `Bearer ${hal.token}`),
        async () => t.request.get(`/psa/pins?name=${'n'.repeat(256)}`).set('Authorization', `Bearer ${hal.token}`),
        async () => t.request.get('/psa/pins?name=a&match=regex').set('Authorization', `Bearer ${hal.token}`),
        async () => t.request.get('/psa/pins?status=done').set('Authorization', `Bearer ${hal.token}`),
        async () => t.request.get('/psa/pins?before=yesterday').set('Authorization', `Bearer ${hal.token}`),
        async () => t.request.get('/psa/pins?after=2026-13-45T99:00:00Z').set('Authorization', `Bearer ${hal.token}`),
        async () => t.request.get('/psa/pins?meta=map[a:b]').set('Authorization', `Bearer ${hal.token}`),
        async () => t.request.get('/psa/pins?meta=%5B%5D').set('Authorization', `Bearer ${hal.token}`),
        // 1001 keys URL-encoded are ~20 KB: more than Node's default 16 KiB of request line and headers (431), so a server that allows it.
        async () => {
          const server = createServer({ maxHeaderSize: 64 * 1024 }, t.heimdall.app).listen(0, '127.0.0.1')
          try {
            return await supertest(server).get(`/psa/pins?meta=${encodeURIComponent(JSON.stringify(Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`k${i}`, 'v']))))}`).set('Authorization', `Bearer ${hal.token}`)
          } finally { server.close() }
        },
        async () => t.request.get('/psa/pins?meta=%7B%22a%22%3A1%7D').set('Authorization', `Bearer ${hal.token}`)
      ]
      for (const [i, request] of bad.entries()) {
        const res = await request()
        expect(res.status, `case ${i}: ${JSON.stringify(res.body)}`).toBe(400)
        expect(res.body).toEqual({ error: { reason: 'BAD_REQUEST', details: expect.any(String) } })
      }
      expect((await p.ls('status=queued,pinning,pinned,failed')).count).toBe(0)
      await p.get('00000000-0000-0000-0000-000000000000', 404)
      await p.get('../../etc', 404)
      await p.rm('not-an-id', 404)
      const res = await t.request.get('/psa/nothing').set('Authorization', `Bearer ${hal.token}`).expect(404)
      expect(res.body.error.reason).toBe('NOT_FOUND')
    })
  })
}

describe('the Pinning Service API across a restart', () => {
  it('keeps its peer identity, and resumes queued and pinning requests', async () => {
    const db = await scratchDatabase()
    let t = await startTestHeimdall({ ...db.env, PSA_FETCH_TIMEOUT_SECONDS: '60' })
    const { token } = await createIdentity(t.request)
    const keyFile = await stat(join(t.dataDir, 'peer-key'))
    expect(keyFile.mode & 0o777).toBe(0o600)
    const root = await upload(t, token)
    const id = (await t.request.get('/uploads').set('Authorization', `Bearer ${token}`).expect(200)).body.uploads[0].id as number
    await t.request.delete(`/uploads/${id}`).set('Authorization', `Bearer ${token}`).expect(204)
    await t.heimdall.collector.run()
    const pending = (await t.request.post('/psa/pins').set('Authorization', `Bearer ${token}`).send({ cid: root }).expect(202)).body
    expect(['queued', 'pinning']).toContain(pending.status)
    await t.close({ keepData: true })

    t = await startTestHeimdall({ ...db.env, PSA_FETCH_TIMEOUT_SECONDS: '60' }, t.dataDir)
    try {
      const again = (await t.request.get(`/psa/pins/${pending.requestid as string}`).set('Authorization', `Bearer ${token}`).expect(200)).body
      expect(again.delegates).toEqual(pending.delegates)
      expect(['queued', 'pinning']).toContain(again.status)
      expect(t.logs.some((line) => line.includes('resumed pending pin requests'))).toBe(true)
      // The content arrives: the resumed request pins it.
      await upload(t, token)
      const deadline = Date.now() + 10_000
      let status = again.status as string
      while (status !== 'pinned' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        status = (await t.request.get(`/psa/pins/${pending.requestid as string}`).set('Authorization', `Bearer ${token}`)).body.status
      }
      expect(status).toBe('pinned')
    } finally {
      await t.close()
      await db.drop()
    }
  })
})

async function upload (t: TestHeimdall, token: string): Promise<string> {
  const res = await t.request.post('/upload').set('Authorization', `Bearer ${token}`).attach('file', fixture('glb/BoxTextured.glb'), 'box.glb').expect(200)
  return (res.body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
}

describe('the Pinning Service API: requests waiting for content, per identity', () => {
  it('past PSA_MAX_PENDING a new request is 429 with Retry-After, also when sent at once; held content, a replace, another identity, and the same one once some settle, pass', async () => {
    const db = await scratchDatabase()
    const t = await startTestHeimdall({ ...db.env, PSA_FETCH_TIMEOUT_SECONDS: '60', PSA_MAX_PENDING: '2' })
    try {
      const [eve, flo] = [await createIdentity(t.request), await createIdentity(t.request)]
      const add = async (token: string, cid: string): Promise<{ status: number, headers: Record<string, string>, body: { requestid: string, status: string, error?: { reason: string, details: string } } }> =>
        t.request.post('/psa/pins').set('Authorization', `Bearer ${token}`).send({ cid })
      const waiting = [await add(eve.token, await unknownCid()), await add(eve.token, await unknownCid())]
      for (const res of waiting) expect(['queued', 'pinning']).toContain(res.body.status)
      const refused = await add(eve.token, await unknownCid())
      expect(refused.status).toBe(429)
      expect(refused.headers['retry-after']).toBe('60')
      expect(refused.body.error).toEqual({ reason: 'TOO_MANY_REQUESTS', details: expect.stringMatching(/you have 2 pin requests waiting for their content \(PSA_MAX_PENDING\)/) })
      expect((await add(flo.token, await unknownCid())).status).toBe(202)
      // Sent at once, they are counted one after another: flo had one waiting, one more passes (before, all 60 of 60 did).
      const burst = await Promise.all(Array.from({ length: 20 }, async () => add(flo.token, await unknownCid())))
      expect(burst.filter((r) => r.status === 202)).toHaveLength(1)
      expect(burst.filter((r) => r.status === 429)).toHaveLength(19)
      // At the cap: content pinned here does not wait, and a replace takes a request's place.
      const held = await upload(t, eve.token)
      expect((await add(eve.token, held)).body.status).toBe('pinned')
      await t.request.post(`/psa/pins/${waiting[1]?.body.requestid ?? ''}`).set('Authorization', `Bearer ${eve.token}`).send({ cid: await unknownCid() }).expect(202)
      await t.request.delete(`/psa/pins/${waiting[0]?.body.requestid ?? ''}`).set('Authorization', `Bearer ${eve.token}`).expect(202)
      expect((await add(eve.token, await unknownCid())).status).toBe(202)
    } finally {
      await t.close()
      await db.drop()
    }
  })
})
