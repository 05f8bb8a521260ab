import { randomUUID } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import type { PreviousUpload, UrlStorage } from 'tus-js-client'

/** `$XDG_CACHE_HOME/heimdall/uploads.json`, else `~/.cache/heimdall/uploads.json`. */
export function defaultStatePath (env: NodeJS.ProcessEnv): string {
  const cache = env.XDG_CACHE_HOME !== undefined && env.XDG_CACHE_HOME !== '' ? env.XDG_CACHE_HOME : join(homedir(), '.cache')
  return join(cache, 'heimdall', 'uploads.json')
}

type Stored = Omit<PreviousUpload, 'urlStorageKey'>

/**
 * Where an unfinished resumable upload's URL is kept between runs, keyed by
 * its fingerprint (the server, and the path, size and modification time of
 * every file sent), so that the same command run again after Ctrl-C or a
 * crash continues it. A small JSON file, readable by its owner only, written
 * whole and renamed into place; tus-js-client adds and removes entries.
 * Holds no credentials: an upload URL is useless without the token.
 */
export class UploadStateFile implements UrlStorage {
  readonly #path: string

  constructor (path: string) {
    this.#path = path
  }

  async #read (): Promise<Record<string, Stored>> {
    try {
      const parsed = JSON.parse(await readFile(this.#path, 'utf8')) as unknown
      return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed as Record<string, Stored> : {}
    } catch (err) {
      // Missing, or damaged (a crash mid-write cannot do it; a person might): start afresh rather than refuse to upload.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof SyntaxError) return {}
      throw err
    }
  }

  async #write (data: Record<string, Stored>): Promise<void> {
    await mkdir(dirname(this.#path), { recursive: true, mode: 0o700 })
    const temp = `${this.#path}.${randomUUID()}.tmp`
    await writeFile(temp, `${JSON.stringify(data, null, 2)}\n`, { mode: 0o600 })
    await rename(temp, this.#path)
  }

  async findAllUploads (): Promise<PreviousUpload[]> {
    return this.#find('tus::')
  }

  async findUploadsByFingerprint (fingerprint: string): Promise<PreviousUpload[]> {
    return this.#find(`tus::${fingerprint}::`)
  }

  async #find (prefix: string): Promise<PreviousUpload[]> {
    const data = await this.#read()
    return Object.entries(data).filter(([key]) => key.startsWith(prefix)).map(([key, value]) => ({ ...value, urlStorageKey: key }))
  }

  async removeUpload (urlStorageKey: string): Promise<void> {
    const data = await this.#read()
    if (!(urlStorageKey in data)) return
    const { [urlStorageKey]: _removed, ...rest } = data
    await this.#write(rest)
  }

  async addUpload (fingerprint: string, upload: PreviousUpload): Promise<string> {
    const key = `tus::${fingerprint}::${randomUUID()}`
    const { urlStorageKey: _key, ...stored } = upload
    await this.#write({ ...(await this.#read()), [key]: stored })
    return key
  }
}
