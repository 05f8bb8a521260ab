import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const NGINX_TEMPLATE = join(ROOT, 'nginx/heimdall.conf.template')
export const BODY_LIMIT_SCRIPT = join(ROOT, 'nginx/15-heimdall-body-limit.envsh')

export function findNginx (): string | undefined {
  return ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx'].find((path) => existsSync(path))
}

/** envsubst as the nginx image runs it: only the named variables are replaced, nginx's own `$host` and the like stay. */
export function renderTemplate (template: string, vars: Record<string, string>): string {
  return template.replace(/\$\{([A-Z_][A-Z0-9_]*)\}/g, (whole, name: string) => vars[name] ?? whole)
}

/** HEIMDALL_BODY_LIMIT as the repository's entrypoint hook computes it from MAX_UPLOAD_BYTES. */
export async function bodyLimitFor (maxUploadBytes: number): Promise<string> {
  const { stdout } = await run('sh', ['-c', `. "${BODY_LIMIT_SCRIPT}" && printf %s "$HEIMDALL_BODY_LIMIT"`], { env: { PATH: process.env.PATH, MAX_UPLOAD_BYTES: String(maxUploadBytes) } })
  return stdout
}

/** A self-signed certificate for localhost and 127.0.0.1, laid out as Let's Encrypt does (fullchain.pem, privkey.pem). */
export async function makeCertificate (dir: string): Promise<{ dir: string, cert: Buffer }> {
  await mkdir(dir, { recursive: true })
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', join(dir, 'privkey.pem'), '-out', join(dir, 'fullchain.pem')])
  return { dir, cert: await readFile(join(dir, 'fullchain.pem')) }
}

export interface NginxSite {
  upstream: string
  httpListen: string
  httpsListen: string
  certDir: string
  domain: string
  maxUploadBytes: number
}

/** A main nginx.conf around the rendered site, with every path under `prefix`. */
/** The variables the image's entrypoint fills into a site template, but the upstreams. */
export async function siteVariables (prefix: string, site: Omit<NginxSite, 'upstream'>): Promise<Record<string, string>> {
  return {
    HTTP_LISTEN: site.httpListen,
    HTTPS_LISTEN: site.httpsListen,
    HEIMDALL_DOMAIN: site.domain,
    TLS_CERT_DIR: site.certDir,
    HEIMDALL_BODY_LIMIT: await bodyLimitFor(site.maxUploadBytes),
    HEIMDALL_ACCESS_LOG: join(prefix, 'logs/access.log')
  }
}

export async function writeNginxConfig (prefix: string, site: NginxSite): Promise<string> {
  for (const dir of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi', 'logs']) await mkdir(join(prefix, dir), { recursive: true })
  // Workers may run as nobody when the master is root.
  await chmod(prefix, 0o755)
  for (const dir of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await chmod(join(prefix, dir), 0o777)
  const siteConf = renderTemplate(await readFile(NGINX_TEMPLATE, 'utf8'), { HEIMDALL_UPSTREAM: site.upstream, ...await siteVariables(prefix, site) })
  await writeFile(join(prefix, 'heimdall.conf'), siteConf)
  const main = [
    'worker_processes 1;',
    `pid ${join(prefix, 'nginx.pid')};`,
    `error_log ${join(prefix, 'logs/error.log')} warn;`,
    'events { worker_connections 256; }',
    'http {',
    // As the image's nginx.conf: a full-request-line log for the whole http block, which the site must override.
    `  access_log ${join(prefix, 'logs/access.log')} combined;`,
    `  client_body_temp_path ${join(prefix, 'body')};`,
    `  proxy_temp_path ${join(prefix, 'proxy')};`,
    `  fastcgi_temp_path ${join(prefix, 'fastcgi')};`,
    `  uwsgi_temp_path ${join(prefix, 'uwsgi')};`,
    `  scgi_temp_path ${join(prefix, 'scgi')};`,
    `  include ${join(prefix, 'heimdall.conf')};`,
    '}',
    ''
  ].join('\n')
  const conf = join(prefix, 'nginx.conf')
  await writeFile(conf, main)
  return conf
}

export interface NginxProcess {
  prefix: string
  stop: () => Promise<void>
}

export async function startNginx (bin: string, site: NginxSite): Promise<NginxProcess> {
  const prefix = await mkdtemp(join(tmpdir(), 'heimdall-nginx-'))
  const conf = await writeNginxConfig(prefix, site)
  await run(bin, ['-t', '-q', '-p', prefix, '-c', conf])
  const child = spawn(bin, ['-p', prefix, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'inherit', 'inherit'] })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const [host, port] = site.httpsListen.split(':')
  const deadline = Date.now() + 15_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${await readFile(join(prefix, 'logs/error.log'), 'utf8').catch(() => '')}`)
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(Number(port), host ?? '127.0.0.1')
      socket.once('connect', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => { resolve(false) })
    })
    if (up) break
    if (Date.now() > deadline) { child.kill('SIGKILL'); throw new Error('nginx did not start listening') }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    prefix,
    stop: async () => {
      if (child.exitCode === null) { child.kill('SIGQUIT'); await exited }
      await rm(prefix, { recursive: true, force: true })
    }
  }
}
