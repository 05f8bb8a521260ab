import { resolve } from 'node:path'
import { config as loadDotenv } from 'dotenv'
import { ConfigError, loadConfig } from '../config.ts'
import { appendOperatorItem } from '../denylist/operator-list.ts'
import { operatorName } from './operator.ts'

const USAGE = 'usage: npm run deny -- <CID | /ipfs/CID[/path][*] | //double-hash> [reason…]'

/**
 * `npm run deny -- <item> [reason]`: blocks content by appending one item to
 * DENYLIST_DIR/heimdall-operator.deny. A running server reads it within
 * DENYLIST_POLL_SECONDS: the gateway refuses it, uploads of it are refused
 * and what is stored is taken down. To lift it, delete the line.
 * (`npm run admin -- block` does the same and records it in the database.)
 */
loadDotenv({ quiet: true })
const [item, ...reason] = process.argv.slice(2)
if (item === undefined || item === '--help' || item === '-h') {
  console.error(USAGE)
  process.exit(item === undefined ? 2 : 0)
}
try {
  const config = loadConfig(process.env)
  const { path } = await appendOperatorItem(resolve(config.dataDir, config.denylistDir ?? 'denylists'), item, { reason: reason.join(' '), actor: operatorName() })
  // A `!` item is an exception: it allows what another rule blocks.
  console.log(`${item.startsWith('!') ? 'allowed (an exception to the rules that block it)' : 'blocked'} ${item.replace(/^!/, '')} (in ${path}); a running server applies it within seconds`)
} catch (err) {
  if (err instanceof ConfigError) {
    for (const issue of err.issues) console.error(`configuration error: ${issue}`)
  } else {
    console.error(err instanceof Error ? err.message : err)
  }
  process.exit(1)
}
