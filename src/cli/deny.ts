import { appendFile, mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { config as loadDotenv } from 'dotenv'
import { ConfigError, loadConfig } from '../config.ts'
import { parseDenylist } from '../denylist/denylist-file.ts'

/** The list this command writes to; operators' own lists sit beside it. */
const OPERATOR_LIST = 'heimdall-operator.deny'
const USAGE = 'usage: npm run deny -- <CID | /ipfs/CID[/path][*] | //double-hash> [reason…]'

/**
 * `npm run deny -- <item> [reason]`: blocks content by appending one item to
 * DENYLIST_DIR/heimdall-operator.deny, as the spec's `echo … >> x.deny` would,
 * with the reason, who and when in a comment above it. A running server reads
 * it within DENYLIST_POLL_SECONDS: the gateway refuses it, uploads of it are
 * refused and what is stored is taken down. To lift it, delete the line.
 */
async function deny (item: string, reason: string): Promise<string> {
  const config = loadConfig(process.env)
  const dir = resolve(config.dataDir, config.denylistDir ?? 'denylists')
  // A bare CID is the usual thing to paste: it means the content itself.
  const rule = /^[/!]/.test(item) ? item : `/ipfs/${item}`
  const checked = await parseDenylist([rule], OPERATOR_LIST)
  const problem = checked.problems[0]
  if (problem !== undefined) throw new Error(`"${item}" is not a denylist item: ${problem.message}`)
  if (checked.counts.ipns > 0) throw new Error('Heimdall serves no IPNS names: block the /ipfs/ content instead')
  await mkdir(dir, { recursive: true })
  const who = process.env.SUDO_USER ?? process.env.USER ?? 'unknown'
  const comment = `# ${new Date().toISOString()} by ${who}${reason === '' ? '' : `: ${reason.replace(/[\r\n]+/g, ' ')}`}`
  const path = join(dir, OPERATOR_LIST)
  await appendFile(path, `${comment}\n${rule}\n`, { mode: 0o640 })
  return path
}

loadDotenv({ quiet: true })
const [item, ...reason] = process.argv.slice(2)
if (item === undefined || item === '--help' || item === '-h') {
  console.error(USAGE)
  process.exit(item === undefined ? 2 : 0)
}
try {
  const path = await deny(item, reason.join(' '))
  console.log(`blocked ${item} (in ${path}); a running server applies it within seconds`)
} catch (err) {
  if (err instanceof ConfigError) {
    for (const issue of err.issues) console.error(`configuration error: ${issue}`)
  } else {
    console.error(err instanceof Error ? err.message : err)
  }
  process.exit(1)
}
