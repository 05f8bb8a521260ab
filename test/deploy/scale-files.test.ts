import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { loadConfig } from '../../src/config.ts'
import { SESSION_COOKIE } from '../../src/http/session.ts'
import { findNginx, makeCertificate } from '../support/nginx.ts'
import { requireTool } from '../support/tools.ts'
import { nginxHasUpstreamResolve, writeScaledNginxConfig } from '../support/nginx-scaled.ts'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const read = async (path: string): Promise<string> => readFile(join(ROOT, path), 'utf8')

const hasCompose = requireTool('docker-compose', existsSync('/usr/bin/docker-compose'), 'the scaled deploy files')
const nginx = findNginx()
const hasNginx = requireTool('nginx', nginx !== undefined, 'the scaled deploy files')

const INSTANCES = ['heimdall-1', 'heimdall-2', 'heimdall-3']

interface Service {
  image?: string
  command?: string | string[]
  environment?: Record<string, string | null>
  volumes?: string[]
  ports?: Array<{ published: number | string }>
  healthcheck?: { test: string[] }
  depends_on?: Record<string, { condition: string }>
}

let work: string
beforeAll(async () => { work = await mkdtemp(join(tmpdir(), 'heimdall-scale-')) })
afterAll(async () => { await rm(work, { recursive: true, force: true }) })

describe.skipIf(!hasCompose)('docker-compose.scale.yml', () => {
  async function config (env: string): Promise<Record<string, Service>> {
    const envFile = join(work, 'compose.env')
    await writeFile(envFile, env)
    const { stdout } = await run('docker-compose', ['--env-file', envFile, '-f', join(ROOT, 'docker-compose.scale.yml'), 'config'], {
      // Only the env file: a key in the test's own environment would win over it.
      env: { PATH: process.env.PATH, HOME: process.env.HOME, HEIMDALL_ENV_FILE: envFile }
    })
    return (parse(stdout) as { services: Record<string, Service> }).services
  }
  const completeEnv = async (): Promise<string> => (await read('.env.example'))
    .replace(/^POSTGRES_PASSWORD=$/m, 'POSTGRES_PASSWORD=secret')
    .replace(/^SECRET_KEY=$/m, 'SECRET_KEY=0123456789abcdef0123456789abcdef')
    .replace(/^AWS_ACCESS_KEY_ID=$/m, 'AWS_ACCESS_KEY_ID=heimdall')
    .replace(/^AWS_SECRET_ACCESS_KEY=$/m, 'AWS_SECRET_ACCESS_KEY=s3-secret-s3-secret')
  let services: Record<string, Service>
  beforeAll(async () => { services = await config(await completeEnv()) })
  const service = (name: string): Service => services[name] ?? {}

  it('is valid Compose with .env.example filled in: three instances, PostgreSQL, SeaweedFS, nginx', () => {
    expect(Object.keys(services).sort()).toEqual([...INSTANCES, 'db', 'nginx', 'seaweedfs-bucket', 'seaweedfs-filer', 'seaweedfs-master', 'seaweedfs-volume-1', 'seaweedfs-volume-2'].sort())
  })

  it('gives every instance one SECRET_KEY, one DATABASE_URL and one bucket, on S3 with the embedded IPFS node', () => {
    for (const name of INSTANCES) {
      expect(service(name).environment, name).toMatchObject({
        SECRET_KEY: '0123456789abcdef0123456789abcdef',
        DATABASE_URL: 'postgres://heimdall:secret@db:5432/heimdall',
        BLOCKSTORE: 's3',
        S3_ENDPOINT: 'http://seaweedfs-filer:8333',
        S3_BUCKET: 'heimdall',
        // Unset: the region follows S3_ENDPOINT (us-east-1 for SeaweedFS, the one an AWS endpoint names).
        S3_REGION: '',
        S3_FORCE_PATH_STYLE: 'true',
        AWS_ACCESS_KEY_ID: 'heimdall',
        AWS_SECRET_ACCESS_KEY: 's3-secret-s3-secret'
      })
      // Empty is unset: no Kubo, even with one named in .env.
      expect(service(name).environment?.IPFS_API_URL ?? '').toBe('')
    }
    // The S3 gateway's identity is the one the instances sign with.
    expect(service('seaweedfs-filer').environment).toEqual({ AWS_ACCESS_KEY_ID: 'heimdall', AWS_SECRET_ACCESS_KEY: 's3-secret-s3-secret' })
  })

  it('passes every other setting of .env to the instances, as a configuration Heimdall accepts', () => {
    for (const name of INSTANCES) {
      // Compose writes a key with no value as null; Heimdall's environment has no such thing.
      const environment = Object.fromEntries(Object.entries(service(name).environment ?? {}).map(([key, value]) => [key, value ?? undefined]))
      // .env.example's keys reach the instance; its HOST, PORT and DATA_DIR (for npm start) give way to the image's.
      expect(environment, name).toMatchObject({ QUOTA_BYTES: '10737418240', GC_INTERVAL_SECONDS: '3600', HOST: '0.0.0.0', PORT: '8080', DATA_DIR: '/data' })
      expect(loadConfig(environment).ipfsApiUrl, name).toBeUndefined()
      expect(loadConfig(environment), name).toMatchObject({ host: '0.0.0.0', port: 8080, dataDir: '/data', blockstore: { kind: 's3', bucket: 'heimdall', endpoint: 'http://seaweedfs-filer:8333' } })
    }
  })

  it('keeps a /data volume of its own for each instance (read cache, partial resumable uploads)', () => {
    const volumes = INSTANCES.map((name) => service(name).volumes?.find((v) => v.includes(':/data'))?.split(':')[0])
    expect(new Set(volumes).size).toBe(3)
    expect(volumes.every((v) => v !== undefined && !v.startsWith('/') && !v.startsWith('.'))).toBe(true)
  })

  it('pins every image to a version', () => {
    for (const [name, s] of Object.entries(services)) {
      expect(s.image, name).toMatch(/^[\w./-]+:[\w.-]+$/)
      expect(s.image, name).not.toMatch(/:latest$/)
    }
    for (const name of ['seaweedfs-master', 'seaweedfs-volume-1', 'seaweedfs-volume-2', 'seaweedfs-filer', 'seaweedfs-bucket']) {
      expect(service(name).image).toBe('chrislusf/seaweedfs:4.47')
    }
    expect(service('db').image).toMatch(/^postgres:\d+$/)
    // The upstream's `resolve` needs open-source nginx 1.27.3 or later.
    const [major, minor] = (/^nginx:(\d+)\.(\d+)$/.exec(service('nginx').image ?? '') ?? []).slice(1).map(Number)
    expect((major ?? 0) * 100 + (minor ?? 0)).toBeGreaterThanOrEqual(128)
  })

  it('keeps every block on both volume servers (replication 001)', () => {
    expect(String(service('seaweedfs-master').command)).toContain('-defaultReplication=001')
    for (const name of ['seaweedfs-volume-1', 'seaweedfs-volume-2']) {
      expect(String(service(name).command), name).toMatch(/^volume -mserver=seaweedfs-master:9333 .*-rack=rack1/)
    }
    expect(String(service('seaweedfs-filer').command)).toContain('-s3 -s3.port=8333 -s3.config=/tmp/s3.json')
  })

  it('publishes only 80 and 443, of nginx', () => {
    const published = Object.values(services).flatMap((s) => (s.ports ?? []).map((p) => String(p.published))).sort()
    expect(published).toEqual(['443', '80'])
    expect(service('nginx').ports).toHaveLength(2)
  })

  it('checks each instance on /readyz and starts it after PostgreSQL and the bucket', () => {
    for (const name of INSTANCES) {
      expect(service(name).healthcheck?.test.join(' '), name).toContain('/readyz')
      expect(service(name).depends_on).toEqual({ db: { condition: 'service_healthy' }, 'seaweedfs-bucket': { condition: 'service_completed_successfully' } })
    }
  })

  it('points nginx at the three instances, with the scaled template', () => {
    const env = service('nginx').environment ?? {}
    expect([env.HEIMDALL_UPSTREAM_1, env.HEIMDALL_UPSTREAM_2, env.HEIMDALL_UPSTREAM_3]).toEqual(INSTANCES.map((name) => `${name}:8080`))
    expect(service('nginx').volumes).toContain(`${join(ROOT, 'nginx/heimdall-scaled.conf.template')}:/etc/nginx/templates/heimdall.conf.template:ro`)
  })

  it('refuses to start without the secrets', async () => {
    for (const key of ['SECRET_KEY', 'POSTGRES_PASSWORD', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
      await expect(config((await completeEnv()).replace(new RegExp(`^${key}=.*$`, 'm'), `${key}=`))).rejects.toThrow(new RegExp(`set ${key}`))
    }
  })
})

describe.skipIf(!hasNginx)('nginx/heimdall-scaled.conf.template', () => {
  let site: string
  beforeAll(async () => {
    const { dir } = await makeCertificate(join(work, 'live', 'localhost'))
    const withoutResolve = !await nginxHasUpstreamResolve(nginx ?? 'nginx')
    if (withoutResolve) {
      // Debian 12's nginx is 1.22: everything but that one parameter is still checked.
      console.warn('\n!!!!! nginx here is older than 1.27.3: nginx -t checks the scaled site WITHOUT the servers\' `resolve` parameter (the compose file runs nginx:1.28)\n')
    }
    const conf = await writeScaledNginxConfig(join(work, 'nginx'), {
      upstreams: ['127.0.0.1:18081', '127.0.0.1:18082', '127.0.0.1:18083'],
      httpListen: '127.0.0.1:18080',
      httpsListen: '127.0.0.1:18443',
      certDir: dir,
      domain: 'localhost',
      maxUploadBytes: 1_073_741_824
    }, { withoutResolve })
    const result = await run(nginx ?? 'nginx', ['-t', '-p', join(work, 'nginx'), '-c', conf])
    expect(result.stderr).toMatch(/test is successful/)
    site = await read('nginx/heimdall-scaled.conf.template')
  })
  const block = (opening: string): string => {
    // The last one: `location /` of the HTTPS server, not of the redirecting one.
    const start = site.lastIndexOf(`${opening} {`)
    expect(start, opening).toBeGreaterThanOrEqual(0)
    return site.slice(start, site.indexOf(`\n${/^\s*/.exec(opening)?.[0] ?? ''}}`, start))
  }

  it('passes nginx -t once rendered, streaming uploads as the single-server site does', async () => {
    const rendered = await readFile(join(work, 'nginx', 'heimdall.conf'), 'utf8')
    expect(rendered).toContain('client_max_body_size 1074790400;')
    expect(rendered).toContain('proxy_request_buffering off;')
    expect(rendered).toContain('client_body_buffer_size 4m;')
    expect(rendered).toContain('proxy_set_header X-Forwarded-Host $host;')
    expect(rendered).toContain('return 301 https://$host$request_uri;')
    expect(rendered).not.toMatch(/\$\{[A-Z_]+\}/)
    expect(rendered.match(/^\s*access_log \S+ heimdall;/gm)).toHaveLength(2)
  })

  it('balances over the three instances, each re-resolved and left out for a while after failures, over kept-alive connections', () => {
    for (const name of ['upstream heimdall', 'upstream heimdall_resumable']) {
      const upstream = block(name)
      const servers = [...upstream.matchAll(/^\s*server (\S+) (.*);$/gm)]
      expect(servers.map((s) => s[1]), name).toEqual(['${HEIMDALL_UPSTREAM_1}', '${HEIMDALL_UPSTREAM_2}', '${HEIMDALL_UPSTREAM_3}'])
      for (const s of servers) expect(s[2]).toMatch(/^resolve max_fails=\d+ fail_timeout=\d+s$/)
      expect(upstream).toMatch(/^\s*zone \S+ \d+k;$/m)
      expect(upstream).toMatch(/^\s*keepalive \d+;$/m)
    }
    expect(site).toMatch(/^resolver 127\.0\.0\.11 /m)
  })

  it('sends every request of a resumable upload to one instance: a consistent hash of the caller\'s credentials', () => {
    const upstream = block('upstream heimdall_resumable')
    expect(upstream).toContain(`hash "$http_authorization$cookie_${SESSION_COOKIE}" consistent;`)
    // nginx wants the balancing method before keepalive.
    expect(upstream.indexOf('hash ')).toBeLessThan(upstream.indexOf('keepalive '))
    const location = block('    location /upload/resumable')
    expect(location).toContain('proxy_pass http://heimdall_resumable;')
    expect(location).toContain('proxy_next_upstream off;')
  })

  it('retries elsewhere only what can be replayed', () => {
    const location = block('    location /')
    expect(location).toContain('proxy_pass http://heimdall;')
    expect(location).toMatch(/^\s*proxy_next_upstream error timeout http_502 http_503;$/m)
    expect(site).not.toMatch(/^\s*[^#\s].*non_idempotent/m)
    expect(site).not.toMatch(/^\s*proxy_next_upstream_tries/m)
  })

  it('gets every placeholder from the nginx service of docker-compose.scale.yml, or from the entrypoint hook', async () => {
    const compose = await read('docker-compose.scale.yml')
    const nginxService = /^ {2}nginx:\n([\s\S]*?)(?=^\S|^ {2}\S)/m.exec(compose)?.[1] ?? ''
    const hook = await read('nginx/15-heimdall-body-limit.envsh')
    for (const [, name] of site.matchAll(/\$\{([A-Z_][A-Z0-9_]*)\}/g)) {
      expect(new RegExp(`^ {6}${name ?? ''}:`, 'm').test(nginxService) || hook.includes(`export ${name ?? ''}=`), name).toBe(true)
    }
  })
})
