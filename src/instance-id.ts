import { randomUUID } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * This instance's name in shared state (the pin journal): a random id kept in
 * DATA_DIR/instance-id, the same across restarts of one instance, different
 * for every instance that shares a database.
 */
export async function resolveInstanceId (dataDir: string): Promise<string> {
  const file = join(dataDir, 'instance-id')
  try {
    const stored = (await readFile(file, 'utf8')).trim()
    if (/^[\w-]{8,64}$/.test(stored)) return stored
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const id = randomUUID()
  await writeFile(file, `${id}\n`, { flag: 'w' })
  return id
}
