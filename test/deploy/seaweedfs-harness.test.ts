import { createHash, createHmac } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createBucket, startSeaweed, type SeaweedCluster } from '../support/seaweedfs.ts'

const seaweedBin = inject('seaweedBin')
if (seaweedBin === '') {
  if (process.env.CI === 'true') throw new Error('the SeaweedFS harness test needs the weed binary under CI')
  console.warn('\n!!!!! SKIPPING the SeaweedFS harness test: the weed binary could not be built (it needs Go and the Go module proxy)\n')
}

const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex')
const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest()

/** A path-style S3 request signed with AWS Signature V4 (only what this test sends: no query, plain keys). */
async function s3 (cluster: SeaweedCluster, method: string, path: string, body?: Uint8Array, secret = cluster.secretAccessKey): Promise<Response> {
  const url = new URL(path, cluster.endpoint)
  const amzDate = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '')
  const day = amzDate.slice(0, 8)
  const payload = sha256(body ?? '')
  const headers = { host: url.host, 'x-amz-content-sha256': payload, 'x-amz-date': amzDate }
  const signed = Object.keys(headers).join(';')
  const canonical = [method, url.pathname, '', ...Object.entries(headers).map(([k, v]) => `${k}:${v}`), '', signed, payload].join('\n')
  const scope = `${day}/${cluster.region}/s3/aws4_request`
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n')
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), cluster.region), 's3'), 'aws4_request')
  const authorization = `AWS4-HMAC-SHA256 Credential=${cluster.accessKeyId}/${scope}, SignedHeaders=${signed}, Signature=${hmac(key, toSign).toString('hex')}`
  return fetch(url, { method, body, headers: { 'x-amz-content-sha256': payload, 'x-amz-date': amzDate, authorization } })
}

/**
 * The SeaweedFS the S3 block-store tests run against (#14): a master with
 * replication 001, two volume servers in one rack, a filer and its S3
 * gateway. An object written once is on both volume servers, so it still
 * reads after one of them is killed.
 */
describe.skipIf(seaweedBin === '')('SeaweedFS test harness', () => {
  let cluster: SeaweedCluster
  const bucket = 'heimdall-blocks'
  const body = new Uint8Array(300_000).map((_, i) => (i * 7) % 251)

  beforeAll(async () => {
    cluster = await startSeaweed(seaweedBin)
    await createBucket(cluster, bucket)
  })
  afterAll(async () => { await cluster?.stop() })

  it('answers S3 only to its own key pair', async () => {
    expect((await fetch(`${cluster.endpoint}/`)).status).toBe(403)
    expect((await s3(cluster, 'GET', `/${bucket}/missing`, undefined, 'not-the-secret')).status).toBe(403)
    expect((await s3(cluster, 'GET', `/${bucket}/missing`)).status).toBe(404)
  })

  it('keeps an object on both volume servers and reads it after one is killed', async () => {
    expect((await s3(cluster, 'PUT', `/${bucket}/blocks/one`, body)).status).toBe(200)
    const viaFiler = await fetch(`${cluster.filerUrl}/buckets/${bucket}/blocks/one`)
    expect(Buffer.from(await viaFiler.arrayBuffer()).equals(Buffer.from(body))).toBe(true)

    const entry = await (await fetch(`${cluster.filerUrl}/buckets/${bucket}/blocks/one?metadata=true`)).json() as { chunks: Array<{ file_id: string }> }
    expect(entry.chunks.length).toBeGreaterThan(0)
    const volumeId = entry.chunks[0]!.file_id.split(',')[0]
    const lookup = await (await fetch(`${cluster.masterUrl}/dir/lookup?volumeId=${volumeId}`)).json() as { locations: Array<{ url: string }> }
    expect(lookup.locations.map((l) => `http://${l.url}`).sort()).toEqual(cluster.volumes.map((v) => v.url).sort())

    cluster.volumes[0]!.kill()
    // The survivor holds its own copy: with its peer dead it cannot be proxying.
    for (const chunk of entry.chunks) expect((await fetch(`${cluster.volumes[1]!.url}/${chunk.file_id}`)).status).toBe(200)
    const afterKill = await s3(cluster, 'GET', `/${bucket}/blocks/one`)
    expect(afterKill.status).toBe(200)
    expect(Buffer.from(await afterKill.arrayBuffer()).equals(Buffer.from(body))).toBe(true)
  })
})
