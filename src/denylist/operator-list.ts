import { appendFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { parseDenylist } from './denylist-file.ts'

/** The list operator commands write to; operators' own lists sit beside it. */
export const OPERATOR_LIST = 'heimdall-operator.deny'

/**
 * Appends one checked item to DENYLIST_DIR/heimdall-operator.deny, as the
 * spec's `echo … >> x.deny` would, with who, when and why in a comment above
 * it. A bare CID means `/ipfs/<cid>`. Returns the item as written and the file.
 */
export async function appendOperatorItem (dir: string, item: string, options: { reason: string, actor: string }): Promise<{ rule: string, path: string }> {
  const rule = /^[/!]/.test(item) ? item : `/ipfs/${item}`
  const checked = await parseDenylist([rule], OPERATOR_LIST)
  const problem = checked.problems[0]
  if (problem !== undefined) throw new Error(`"${item}" is not a denylist item: ${problem.message}`)
  if (checked.counts.ipns > 0) throw new Error('Heimdall serves no IPNS names: block the /ipfs/ content instead')
  await mkdir(dir, { recursive: true })
  const comment = `# ${new Date().toISOString()} by ${options.actor}${options.reason === '' ? '' : `: ${options.reason.replace(/[\r\n]+/g, ' ')}`}`
  const path = join(dir, OPERATOR_LIST)
  await appendFile(path, `${comment}\n${rule}\n`, { mode: 0o640 })
  return { rule, path }
}
