import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises'
import { createServer, connect as connectTcp } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AVATAR_FST, fixture } from '../support/fixtures.ts'
import { makeDataDir } from '../support/heimdall-harness.ts'
import { newToken, startHeimdallProcess, type HeimdallProcess } from '../support/heimdall-process.ts'
import { freePort } from '../support/free-port.ts'

const BIN = fileURLToPath(new URL('../../bin/heimdall.js', import.meta.url))

/**
 * The Node that runs the launcher: the system's, as `npx` does, when it is
 * older than 24 (so the launcher's re-execution with the pinned Node is what
 * is tested); else this one.
 */
const SYSTEM_NODE = ((): string => {
  const found = spawnSync('/usr/bin/node', ['-p', 'process.versions.node'], { encoding: 'utf8' })
  return found.status === 0 && Number(found.stdout.split('.')[0]) < 24 ? '/usr/bin/node' : process.execPath
})()

interface Run { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

describe('npx heimdall upload', () => {
  let server: HeimdallProcess
  let dataDir: string
  let work: string
  let token: string
  let env: Record<string, string>

  /** The CLI as its own process, through the bin launcher; `onStderr` sees its progress as it comes. */
  function cli (args: string[], extraEnv: Record<string, string> = {}, onStderr?: (text: string, child: ReturnType<typeof spawn>) => void): Promise<Run> {
    const child = spawn(SYSTEM_NODE, [BIN, ...args], { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); onStderr?.(stderr, child) })
    return new Promise((resolve, reject) => {
      child.on('error', reject)
      child.on('close', (code, signal) => { resolve({ code, signal, stdout, stderr }) })
    })
  }

  beforeAll(async () => {
    dataDir = await makeDataDir()
    work = await mkdtemp(join(tmpdir(), 'heimdall-cli-'))
    // PUBLIC_URL as the CLI reaches it, so that the links it prints are fetchable here.
    const port = String(await freePort())
    server = await startHeimdallProcess({ DATA_DIR: dataDir, SECRET_KEY: 'x'.repeat(40), AUTH_FAILURES_ALLOWED: '1000000', PORT: port, PUBLIC_URL: `http://127.0.0.1:${port}` })
    token = await newToken(server.url, 'cliuser')
    // A home of its own: the state file of resumable uploads goes under it.
    env = { PATH: process.env.PATH ?? '', HOME: work, XDG_CACHE_HOME: join(work, 'cache'), HEIMDALL_SERVER: server.url, HEIMDALL_TOKEN: token }
  }, 120_000)

  afterAll(async () => {
    await server?.stop()
    await rm(dataDir, { recursive: true, force: true })
    await rm(work, { recursive: true, force: true })
  })

  it('says how it is used, and which exit codes mean what', async () => {
    const help = await cli(['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/usage: npx heimdall upload <file\|folder>/)
    for (const code of ['0  uploaded', '1  usage', '2  refused', '3  authentication', '4  the server could not be reached']) expect(help.stdout).toContain(code)
    const bare = await cli([])
    expect(bare.code).toBe(1)
    const unknown = await cli(['upload', 'x.glb', '--colour'])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toMatch(/Unknown option '--colour'/)
    const missing = await cli(['upload', join(work, 'nothing.glb')])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('no such file or folder')
    const noToken = await cli(['upload', BIN], { HEIMDALL_TOKEN: '' })
    expect(noToken.code).toBe(1)
    expect(noToken.stderr).toContain('no token')
  })

  it('uploads a GLB: exit 0, the link on stdout, plain progress lines on a pipe, content on the gateway', async () => {
    const glb = join(work, 'BoxTextured.glb')
    await writeFile(glb, fixture('glb/BoxTextured.glb'))
    const run = await cli(['upload', glb])
    expect(run.stderr).not.toContain(token)
    expect(run.code).toBe(0)
    const link = run.stdout.trim()
    expect(link).toMatch(new RegExp(`^${server.url}/ipfs/\\w+/BoxTextured\\.glb$`))
    // Not a terminal: a line to start, progress lines, a line at the end; no carriage returns.
    expect(run.stderr).toMatch(/^uploading BoxTextured\.glb \(\d\.\d KiB\) to http:\/\/127\.0\.0\.1:\d+\n/)
    expect(run.stderr).toMatch(/^100 % (\d\.\d KiB) of \1/m)
    expect(run.stderr).toContain('sent; the server is checking')
    expect(run.stderr).not.toContain('\r')
    const served = await fetch(link)
    expect(served.status).toBe(200)
    expect(Buffer.from(await served.arrayBuffer()).equals(fixture('glb/BoxTextured.glb'))).toBe(true)
  })

  it('on a terminal, redraws one progress line: bar, bytes of total, rate, time left', async () => {
    // util-linux's script(1) gives the CLI a pseudo-terminal, as a person's shell does.
    if (!existsSync('/usr/bin/script')) {
      if (process.env.CI === 'true') throw new Error('/usr/bin/script (util-linux) is required under CI')
      console.warn('\n!!!!! SKIPPING the terminal progress test: /usr/bin/script not found\n')
      return
    }
    const file = join(work, 'eight.bin')
    await writeFile(file, randomBytes(8 * 1024 * 1024))
    const shell = `exec ${SYSTEM_NODE} ${BIN} upload ${file} --resumable`
    const run = await new Promise<Run>((resolve, reject) => {
      const child = spawn('/usr/bin/script', ['-qec', shell, '/dev/null'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
      let stdout = ''
      child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
      child.on('error', reject)
      child.on('close', (code, signal) => { resolve({ code, signal, stdout, stderr: '' }) })
    })
    expect(run.code).toBe(0)
    // Frames start with a carriage return and clear the rest of the line (ESC [K); the last one is complete and ends the line.
    expect(run.stdout.replaceAll('\x1b[K', '<EL>')).toMatch(/\r\[[#-]{10,30}\] {3}0 % 0 B of 8\.0 MiB, …, ETA --:--<EL>/)
    expect(run.stdout.replaceAll('\x1b[K', '<EL>')).toMatch(/\r\[#{10,30}\] 100 % 8\.0 MiB of 8\.0 MiB, [\d.]+ [KMG]?i?B\/s, ETA 00:00<EL>\r?\n/)
    expect(run.stdout).toMatch(/sent; the server is checking the upload and adding it to IPFS…\r?\nhttp:\/\/127\.0\.0\.1:\d+\/ipfs\/\w+\/eight\.bin\r?\n/)
  })

  it('uploads a folder as a bundle: the .fst is the link and relative paths resolve under the root CID', async () => {
    const folder = join(work, 'MyAvatar')
    await writeAvatarFolder(folder)
    await writeFile(join(folder, '.DS_Store'), 'Finder litter, left out')
    // Links: one to a file inside the folder is sent as that file; one leading out of it (a key, through a symlinked
    // folder or not), one to nothing and one to a folder are left out, each said.
    await symlink('textures/skin.png', join(folder, 'skin-link.png'))
    await mkdir(join(work, 'vault', 'ssh'), { recursive: true })
    await writeFile(join(work, 'vault', 'ssh', 'id_ed25519'), 'PRIVATE KEY')
    await symlink(join(work, 'vault', 'ssh'), join(work, '.ssh'))
    await symlink(join(work, '.ssh', 'id_ed25519'), join(folder, 'notes.txt'))
    await symlink(join(work, 'nowhere.fbx'), join(folder, 'old.fbx'))
    await symlink('textures', join(folder, 'more-textures'))

    const run = await cli(['upload', folder, '--json'])
    expect(run.code).toBe(0)
    expect(run.stderr).toMatch(/^left out notes\.txt: it links outside the folder \(.*vault\/ssh\/id_ed25519\); copy the file in to upload it$/m)
    expect(run.stderr).toMatch(/^left out old\.fbx: a link to nothing$/m)
    expect(run.stderr).toMatch(/^left out more-textures: it links to a folder, which is not followed$/m)
    expect(run.stderr).toMatch(/^uploading MyAvatar\.zip \(a bundle of 4 files, /m)
    const items = JSON.parse(run.stdout) as Array<{ Name: string, Hash: string, primary?: string, kind?: string }>
    const root = items.at(-1)
    expect(root?.Name).toBe('MyAvatar')
    expect(root?.kind).toBe('avatar')
    expect(root?.primary).toBe(`${server.url}/ipfs/${root?.Hash ?? ''}/avatar.fst`)
    expect(items.map((i) => i.Name).sort()).toEqual(['MyAvatar', 'MyAvatar/avatar.fst', 'MyAvatar/box.fbx', 'MyAvatar/skin-link.png', 'MyAvatar/textures', 'MyAvatar/textures/skin.png'].sort())
    const texture = await fetch(`${server.url}/ipfs/${root?.Hash ?? ''}/textures/skin.png`)
    expect(texture.status).toBe(200)
    expect(Buffer.from(await texture.arrayBuffer()).equals(fixture('gltf/BoxTextured/CesiumLogoFlat.png'))).toBe(true)
    expect((await fetch(`${server.url}/ipfs/${root?.Hash ?? ''}/.DS_Store`)).status).toBe(404)

    // Without --json: the link alone on stdout (the same content under the same name is the same upload).
    const again = await cli(['upload', folder])
    expect(again.code).toBe(0)
    expect(again.stdout).toBe(`${root?.primary ?? ''}\n`)
  })

  it('uploads a folder whose zip directory passes 64 KiB (900 files), in one request and resumable: the size announced is the size sent', async () => {
    // yazl announced 76 bytes more than it wrote once its central directory reached 64 KiB: the plain upload hung on its
    // Content-Length and the resumable one failed (found by review); the ZIP64 end record makes the two agree.
    const folder = join(work, 'Many')
    await mkdir(join(folder, 'textures'), { recursive: true })
    for (let i = 0; i < 900; i++) await writeFile(join(folder, 'textures', `material_${String(i).padStart(4, '0')}_basecolor_texture.bin`), `texture ${i}`)
    const plain = await cli(['upload', folder, '--json', '--no-resumable'])
    expect(plain.code, plain.stderr).toBe(0)
    const resumable = await cli(['upload', folder, '--json', '--resumable'])
    expect(resumable.code, resumable.stderr).toBe(0)
    const [a, b] = [plain, resumable].map((run) => JSON.parse(run.stdout) as Array<{ Name: string, Hash: string }>)
    expect(a?.length).toBe(902)
    expect(b?.at(-1)?.Hash).toBe(a?.at(-1)?.Hash)
  }, 120_000)

  it('a file that changes while it is sent fails the run (1) with the reason, over either route; a server URL with credentials is refused without echoing them', async () => {
    const { uploadMultipart } = await import('../../src/client/multipart-upload.ts')
    const { uploadResumable } = await import('../../src/client/resumable-upload.ts')
    const { UploadStateFile } = await import('../../src/client/upload-state.ts')
    // What a file that was 1 MiB when measured and is half of that by the time it is read gives.
    const shrunk = { kind: 'file' as const, fileName: 'shrunk.bin', name: undefined, size: 1024 * 1024, fingerprint: `file:shrunk:${Date.now()}`, files: 1, open: () => Readable.from([Buffer.alloc(512 * 1024, 7)]), unchanged: async () => Promise.resolve(true) }
    const controller = new AbortController()
    const plain = uploadMultipart({ server: server.url, token, source: shrunk, onProgress: () => {}, signal: controller.signal })
    await expect(plain).rejects.toMatchObject({ exitCode: 1, message: expect.stringMatching(/^shrunk\.bin changed while it was sent \(524288 bytes read of the 1048576 it had\)/) as unknown })
    const resumable = uploadResumable({ endpoint: `${server.url}/upload/resumable`, token, source: shrunk, state: new UploadStateFile(join(work, 'shrunk-state.json')), chunkSize: Infinity, retryDelays: [], onProgress: () => {}, onNote: () => {}, signal: controller.signal })
    await expect(resumable).rejects.toMatchObject({ exitCode: 1, message: expect.stringMatching(/^shrunk\.bin changed while it was sent \(the source ended 524288 bytes early/) as unknown })

    // Saved again in place, the same size (as an exporter writes over its file): neither version is sent as if whole.
    const { openSource } = await import('../../src/client/upload-source.ts')
    for (const route of ['plain', 'resumable'] as const) {
      const saved = join(work, `saved-${route}.glb`)
      await writeFile(saved, fixture('glb/BoxTextured.glb'))
      const source = await openSource(saved)
      const later = new Date(Date.now() + 5000)
      await utimes(saved, later, later)
      const run = route === 'plain'
        ? uploadMultipart({ server: server.url, token, source, onProgress: () => {}, signal: controller.signal })
        : uploadResumable({ endpoint: `${server.url}/upload/resumable`, token, source, state: new UploadStateFile(join(work, 'saved-state.json')), chunkSize: Infinity, retryDelays: [], onProgress: () => {}, onNote: () => {}, signal: controller.signal })
      await expect(run, route).rejects.toMatchObject({ exitCode: 1, message: expect.stringMatching(/changed while it was sent \(.*saved again while it was read/) as unknown })
    }

    const withPath = await cli(['upload', join(work, 'nothing-needed.bin'), '--server', `${server.url}/heimdall/`])
    expect(withPath.code).toBe(1)
    expect(withPath.stderr).toMatch(/has a path or query \(\/heimdall\/\)/)

    const withCredentials = await cli(['upload', join(work, 'nothing-needed.bin'), '--server', server.url.replace('http://', 'http://someone:secret@')])
    expect(withCredentials.code).toBe(1)
    expect(withCredentials.stderr).toMatch(/carries a user name or password/)
    expect(withCredentials.stderr).not.toContain('secret')
  })

  it('prints the server\'s warnings', async () => {
    // An avatar whose .fst names a texture folder that is not there: uploaded, with a warning.
    const folder = join(work, 'Bare')
    await writeAvatarFolder(folder, { textures: false })
    const json = await cli(['upload', folder, '--json'])
    expect(json.code).toBe(0)
    const warnings = (JSON.parse(json.stdout) as Array<{ warnings?: string[] }>).at(-1)?.warnings ?? []
    const run = await cli(['upload', folder])
    expect(run.code).toBe(0)
    for (const warning of warnings) expect(run.stderr).toContain(`warning: ${warning}`)
  })

  it('exits 2 with the server\'s error for a refused file, 3 for a wrong token, 4 for a server that is down', async () => {
    const fake = join(work, 'fake.glb')
    await writeFile(fake, 'this is not a binary glTF at all')
    const refused = await cli(['upload', fake])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/^heimdall: .+ \(415\)$/m)
    expect(refused.stdout).toBe('')
    const refusedJson = await cli(['upload', fake, '--json'])
    expect(refusedJson.code).toBe(2)
    expect((JSON.parse(refusedJson.stdout) as { code: string }).code).toBeTypeOf('string')

    const glb = join(work, 'BoxTextured.glb')
    const wrong = await cli(['upload', glb, '--token', 'not-a-real-token'])
    expect(wrong.code).toBe(3)
    expect(wrong.stderr).toMatch(/\(401\)/)
    expect(wrong.stderr).not.toContain('not-a-real-token')
    // A large body refused at once: neither the broken pipe that follows the answer ("the file changed", 3 of 5 runs) nor a
    // lost answer (EPIPE before it was read: 4) but the answer's 3; the body waits for the server's 100 Continue.
    const big = join(work, 'big-wrong-token.glb')
    await writeFile(big, Buffer.concat([fixture('glb/BoxTextured.glb'), randomBytes(48 * 1024 * 1024)]))
    for (let i = 0; i < 8; i++) {
      const refusedBig = await cli(['upload', big, '--no-resumable', '--token', 'not-a-real-token'])
      expect(refusedBig.code, refusedBig.stderr).toBe(3)
      expect(refusedBig.stderr).not.toMatch(/changed while it was sent/)
    }

    const down = await cli(['upload', glb, '--server', `http://127.0.0.1:${await freePort()}`])
    expect(down.code).toBe(4)
    expect(down.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/)
  })

  describe('resumable uploads (tus)', () => {
    const rootOf = (run: Run): { Hash: string, Name: string } => {
      const root = (JSON.parse(run.stdout) as Array<{ Hash: string, Name: string }>).at(-1)
      if (root === undefined) throw new Error(`no answer: ${run.stderr}`)
      return root
    }

    it('the server offers them', async () => {
      const routes = await (await fetch(`${server.url}/plugin_routes`)).json() as { resumable_upload?: string }
      expect(routes.resumable_upload).toBe('/upload/resumable')
    })

    it('reaches a server on a port fetch refuses (10080, on the Fetch standard\'s blocked list): the routes are asked as the uploads are sent', async () => {
      const forward = createServer((client) => {
        const upstream = connectTcp(Number(new URL(server.url).port), '127.0.0.1')
        client.on('error', () => {})
        upstream.on('error', () => {})
        client.pipe(upstream).pipe(client)
      })
      await new Promise<void>((resolve, reject) => { forward.once('error', reject); forward.listen(10080, '127.0.0.1', () => { resolve() }) })
      try {
        const glb = join(work, 'blocked-port.glb')
        await writeFile(glb, fixture('glb/BoxTextured.glb'))
        const run = await cli(['upload', glb, '--resumable', '--server', 'http://127.0.0.1:10080'])
        expect(run.code, run.stderr).toBe(0)
        expect(run.stderr).toMatch(/, resumable/)
      } finally {
        forward.close()
      }
    })

    it('sends a folder with --resumable: the zip made while it is sent has the size announced, and the same CID as in one request', async () => {
      const folder = join(work, 'Resumed')
      await writeAvatarFolder(folder)
      const resumable = await cli(['upload', folder, '--json', '--resumable'])
      expect(resumable.stderr).toMatch(/^uploading Resumed\.zip .*, resumable$/m)
      expect(resumable.code).toBe(0)
      const plain = await cli(['upload', folder, '--json', '--no-resumable'])
      expect(plain.code).toBe(0)
      expect(plain.stderr).not.toContain('resumable')
      expect(rootOf(resumable)).toEqual(rootOf(plain))
    })

    it('continues a 192 MiB upload after the CLI was killed part-way, sending only what the server lacks', async () => {
      const size = 192 * 1024 * 1024
      const big = join(work, 'big.bin')
      // Distinct 1 MiB blocks, so that no block repeats: the bytes a resumed upload sends are all new.
      const handle = await import('node:fs/promises').then((fs) => fs.open(big, 'w'))
      const seed = randomBytes(1024 * 1024)
      for (let i = 0; i < size / seed.length; i++) {
        const block = Buffer.from(seed)
        createHash('sha256').update(`${i}`).digest().copy(block)
        await handle.write(block)
      }
      await handle.close()

      // Killed (SIGKILL, the whole process group: launcher and CLI) once a third is sent.
      let killed = false
      const first = await cli(['upload', big, '--json'], {}, (text, child) => {
        if (!killed && /^\s*(3\d|[4-9]\d) % /m.test(text)) { killed = true; process.kill(-(child.pid ?? 0), 'SIGKILL') }
      })
      expect(first.signal).toBe('SIGKILL')
      expect(first.stderr).toMatch(/, resumable\n/)

      // The state file kept the upload's URL; the server holds part of it.
      const statePath = join(work, 'cache', 'heimdall', 'uploads.json')
      const state = Object.values(JSON.parse(await readFile(statePath, 'utf8')) as Record<string, { uploadUrl: string, size: number }>)
      expect(state).toHaveLength(1)
      expect(state[0]?.size).toBe(size)
      const head = await fetch(state[0]?.uploadUrl ?? '', { method: 'HEAD', headers: { Authorization: `Bearer ${token}`, 'Tus-Resumable': '1.0.0' } })
      expect(head.status).toBe(200)
      const offset = Number(head.headers.get('upload-offset'))
      expect(offset).toBeGreaterThan(0)
      expect(offset).toBeLessThan(size)

      // A run with a wrong token fails (3) and keeps the upload for the next run: tus-js-client alone forgot it on the
      // HEAD's 401 and the next run started again from byte 0 (found by review).
      const wrong = await cli(['upload', big, '--json'], { HEIMDALL_TOKEN: 'not-the-token' })
      expect(wrong.code).toBe(3)
      expect(wrong.stderr).toMatch(/answered 401 when asked how far the upload an earlier run started got \(check the token\); it is kept for the next run/)
      expect(Object.values(JSON.parse(await readFile(statePath, 'utf8')) as object)).toHaveLength(1)

      const second = await cli(['upload', big, '--json'])
      expect(second.code).toBe(0)
      expect(second.stderr).toContain('resuming the upload an earlier run started')
      // Its progress starts where the server was, not at 0.
      const percents = [...second.stderr.matchAll(/^\s*(\d+) % /gm)].map((m) => Number(m[1]))
      expect(percents[0]).toBeGreaterThanOrEqual(Math.floor((offset / size) * 100))
      expect(percents.at(-1)).toBe(100)
      expect(percents.length).toBeGreaterThanOrEqual(3)
      // Finished: the state file forgets it.
      expect(Object.keys(JSON.parse(await readFile(statePath, 'utf8')) as object)).toHaveLength(0)

      // The same bytes in one plain request: the same CIDs.
      const plain = await cli(['upload', big, '--json', '--no-resumable'])
      expect(plain.code).toBe(0)
      expect(rootOf(second)).toEqual(rootOf(plain))
      expect(existsSync(big)).toBe(true)
    }, 240_000)
  })
})

/** An avatar folder as a creator has it: the .fst, its model, and (unless told otherwise) the texture folder it names. */
async function writeAvatarFolder (folder: string, options: { textures?: boolean } = {}): Promise<void> {
  await mkdir(options.textures === false ? folder : join(folder, 'textures'), { recursive: true })
  await writeFile(join(folder, 'avatar.fst'), AVATAR_FST)
  await writeFile(join(folder, 'box.fbx'), fixture('fbx/box-binary.fbx'))
  if (options.textures !== false) await writeFile(join(folder, 'textures', 'skin.png'), fixture('gltf/BoxTextured/CesiumLogoFlat.png'))
}
