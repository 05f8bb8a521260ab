import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { FIXTURES_DIR } from './fixtures.ts'

const run = promisify(execFile)
const CLIENT = fileURLToPath(new URL('../addon/addon_client.py', import.meta.url))

export async function hasPython (): Promise<boolean> {
  try { await run('python3', ['--version']); return true } catch { return false }
}

/**
 * Runs the Blender add-on's round trip (test/addon/addon_client.py, Python's
 * http.client) against `baseUrl`, over https when `caFile` is given, with
 * the shared FBX and PNG fixtures. Returns what the client saw.
 */
export async function runAddonClient (baseUrl: string, username: string, caFile?: string): Promise<Record<string, unknown>> {
  const { stdout } = await run('python3', [CLIENT, baseUrl, `${FIXTURES_DIR}fbx/box-binary.fbx`, `${FIXTURES_DIR}gltf/BoxTextured/CesiumLogoFlat.png`, username, ...(caFile === undefined ? [] : [caFile])])
  return JSON.parse(stdout) as Record<string, unknown>
}
