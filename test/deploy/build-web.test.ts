import { execFile } from 'node:child_process'
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

describe('the web build before npm start (--if-changed)', () => {
  // A copy of what the build reads, so that the repository's own public/build, which other tests serve, is not touched.
  let copy: string
  beforeAll(async () => {
    copy = await mkdtemp(join(tmpdir(), 'heimdall-web-'))
    await mkdir(join(copy, 'scripts'))
    await cp(join(ROOT, 'scripts', 'build-web.ts'), join(copy, 'scripts', 'build-web.ts'))
    await cp(join(ROOT, 'web'), join(copy, 'web'), { recursive: true })
    await cp(join(ROOT, 'src', 'assets'), join(copy, 'src', 'assets'), { recursive: true })
    await cp(join(ROOT, 'package-lock.json'), join(copy, 'package-lock.json'))
    await symlink(join(ROOT, 'node_modules'), join(copy, 'node_modules'))
  })
  afterAll(async () => { await rm(copy, { recursive: true, force: true }) })

  const build = async (...args: string[]): Promise<string> => (await run(process.execPath, [join(copy, 'scripts', 'build-web.ts'), ...args], { cwd: copy })).stdout

  it('builds once, keeps what the same inputs built, and builds again when a file it read (web/, src/) or the lockfile changes', async () => {
    expect(await build('--if-changed')).toMatch(/^web assets built: /)
    const first = (await readdir(join(copy, 'public', 'build'))).sort()
    expect(await build('--if-changed')).toBe('web assets up to date\n')
    expect((await readdir(join(copy, 'public', 'build'))).sort()).toEqual(first)

    await writeFile(join(copy, 'web', 'styles.css'), '\n/* changed */\n', { flag: 'a' })
    expect(await build('--if-changed')).toMatch(/^web assets built: .*styles-/)
    expect(await build('--if-changed')).toBe('web assets up to date\n')
    // A module of the server's that the preview imports.
    await writeFile(join(copy, 'src', 'assets', 'fst.ts'), '\nexport const changed = 1\n', { flag: 'a' })
    expect(await build('--if-changed')).toMatch(/^web assets built: /)
    expect(await build('--if-changed')).toBe('web assets up to date\n')
    await writeFile(join(copy, 'package-lock.json'), '\n', { flag: 'a' })
    expect(await build('--if-changed')).toMatch(/^web assets built: /)
    // Without the flag (npm run build:web, the Docker build): always.
    expect(await build()).toMatch(/^web assets built: /)
  })
})
