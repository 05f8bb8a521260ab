import { createReadStream } from 'node:fs'
import { access } from 'node:fs/promises'
import { basename } from 'node:path'
import { parseArgs } from 'node:util'
import { config as loadDotenv } from 'dotenv'
import { operatorName } from './operator.ts'
import { ConfigError, loadConfig, type Config } from '../config.ts'
import { askControlSocket, controlSocketPath } from '../control-socket.ts'
import { HeimdallError } from '../errors.ts'
import { openHeimdall } from '../heimdall.ts'
import { createLogger } from '../logger.ts'
import type { CarImportReport } from '../services/operator-car-import.ts'

/**
 * `npm run import-car -- FILE [--owner USERNAME]`: imports a CAR (v1 or v2) as an
 * operator, e.g. a pinset from another node. Its blocks are verified and its
 * DAG checked complete as for an upload, without the content checks, then
 * pinned, and recorded as an upload of USERNAME when given. A running server
 * holds the embedded repo (and the embedded database): the CAR is streamed to it over its
 * control socket (DATA_DIR/heimdall.sock), so nothing needs stopping; with
 * no server running, the data dir is opened here.
 */
async function importCar (config: Config, file: string, owner: string | undefined): Promise<{ report: CarImportReport, via: string }> {
  await access(file)
  const socket = controlSocketPath(config.dataDir)
  const running = await askControlSocket(socket, 'GET', '/').then(() => true, () => false)
  if (running) {
    const query = new URLSearchParams({ name: basename(file), actor: operatorName(), ...(owner === undefined ? {} : { owner }) })
    const asked = await askControlSocket(socket, 'POST', `/import-car?${query.toString()}`, createReadStream(file))
    if (asked.status !== 200) {
      const { error, details } = asked.body as { error?: string, details?: string[] }
      if (asked.status === 404 && error === 'unknown command') throw new Error('the running server is too old to import CARs; stop it and run this again')
      throw new HeimdallError(error ?? `the running server answered ${asked.status}`, 'ERR_IMPORT_CAR', asked.status, details)
    }
    return { report: asked.body as CarImportReport, via: 'the running server' }
  }
  const heimdall = await openHeimdall(config, createLogger('warn'))
  try {
    return { report: await heimdall.importCar(createReadStream(file, { highWaterMark: 1024 * 1024 }), { fileName: basename(file), owner, actor: operatorName() }), via: 'the stopped data dir' }
  } finally {
    await heimdall.close()
  }
}

loadDotenv({ quiet: true })
try {
  const { positionals, values } = parseArgs({ allowPositionals: true, options: { owner: { type: 'string' } } })
  const [file] = positionals
  if (file === undefined || positionals.length !== 1) throw new Error('usage: npm run import-car -- FILE [--owner USERNAME]')
  const { report, via } = await importCar(loadConfig(process.env), file, values.owner)
  const what = `${report.files} file${report.files === 1 ? '' : 's'}, ${report.size} bytes`
  console.log(report.upload === undefined
    ? `pinned ${report.rootCid} (${what}) via ${via}, as the operator's pin: no one's upload (no --owner), kept until a denylist takes it down`
    : `imported ${report.rootCid} (${what}) via ${via} as upload ${report.upload.id} "${report.upload.name}" of ${report.upload.owner}${report.upload.created ? '' : ' (already recorded)'}`)
} catch (err) {
  if (err instanceof ConfigError) {
    for (const issue of err.issues) console.error(`configuration error: ${issue}`)
  } else {
    console.error('import failed:', err instanceof Error ? err.message : err)
    if (err instanceof Error && err.name === 'RepoLockedError') console.error('  a server holds the repo but its control socket does not answer: stop it (or wait until it is up) and run this again')
    if (err instanceof HeimdallError) for (const detail of err.details) console.error(`  ${detail}`)
  }
  process.exit(1)
}
