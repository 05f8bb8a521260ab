import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/**
 * A Go program built from the module proxy into `bin` (under the git-ignored
 * .cache/), unless it is there already: `go mod download` of `module@version`
 * in a scratch module (Kubo ≥ 0.40 refuses `go install pkg@version`), then
 * `go build` of `pkg` inside the downloaded module. Several test runs may
 * build at once: each writes its own file, and the rename is atomic.
 */
export async function goBuild (module: string, version: string, pkg: string, bin: string): Promise<string> {
  if (existsSync(bin)) return bin
  await mkdir(dirname(bin), { recursive: true })
  const scratch = await mkdtemp(join(tmpdir(), 'heimdall-go-mod-'))
  try {
    await writeFile(join(scratch, 'go.mod'), 'module heimdall/go-fetch\n\ngo 1.25\n')
    const { stdout } = await run('go', ['mod', 'download', '-json', `${module}@${version}`], { cwd: scratch, maxBuffer: 16 * 1024 * 1024 })
    const dir = (JSON.parse(stdout) as { Dir?: string }).Dir
    if (dir === undefined) throw new Error(`go mod download gave no directory for ${module}@${version}`)
    const partial = `${bin}.partial-${process.pid}`
    await run('go', ['build', '-trimpath', '-o', partial, pkg], { cwd: dir, env: { ...process.env, GOFLAGS: '-mod=mod', CGO_ENABLED: '0' }, maxBuffer: 16 * 1024 * 1024 })
    await run('mv', [partial, bin])
    return bin
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
}
