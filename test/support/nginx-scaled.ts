import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { renderTemplate, siteVariables, writeNginxConfig, type NginxSite } from './nginx.ts'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const SCALED_NGINX_TEMPLATE = join(ROOT, 'nginx/heimdall-scaled.conf.template')

/** The scaled site: the single site's settings, with three instances instead of one. */
export interface ScaledNginxSite extends Omit<NginxSite, 'upstream'> {
  upstreams: [string, string, string]
}

/** The nginx version `bin -v` reports, as [major, minor, patch]. */
export async function nginxVersion (bin: string): Promise<[number, number, number]> {
  const { stderr } = await run(bin, ['-v'])
  const m = /nginx\/(\d+)\.(\d+)\.(\d+)/.exec(stderr)
  if (m === null) throw new Error(`cannot read the version of ${bin}: ${stderr}`)
  return [Number(m[1]), Number(m[2]), Number(m[3])]
}

/** Open-source nginx takes `resolve` on an upstream server from 1.27.3 on (Debian 12 has 1.22). */
export async function nginxHasUpstreamResolve (bin: string): Promise<boolean> {
  const [major, minor, patch] = await nginxVersion(bin)
  return major > 1 || minor > 27 || (minor === 27 && patch >= 3)
}

/**
 * nginx/heimdall-scaled.conf.template rendered as the nginx image renders it,
 * inside the same main nginx.conf as the single-server site (every path under
 * `prefix`). With `withoutResolve`, the servers' `resolve` parameter is left
 * out, for an nginx older than 1.27.3; the rest of the file is unchanged.
 */
export async function writeScaledNginxConfig (prefix: string, site: ScaledNginxSite, options: { withoutResolve: boolean }): Promise<string> {
  // The main file and folders of the single site, whose heimdall.conf is then replaced.
  const conf = await writeNginxConfig(prefix, { ...site, upstream: site.upstreams[0] })
  let rendered = renderTemplate(await readFile(SCALED_NGINX_TEMPLATE, 'utf8'), {
    HEIMDALL_UPSTREAM_1: site.upstreams[0],
    HEIMDALL_UPSTREAM_2: site.upstreams[1],
    HEIMDALL_UPSTREAM_3: site.upstreams[2],
    ...await siteVariables(prefix, site)
  })
  if (options.withoutResolve) rendered = rendered.replace(/^(\s*server \S+) resolve /gm, '$1 ')
  await writeFile(join(prefix, 'heimdall.conf'), rendered)
  return conf
}
