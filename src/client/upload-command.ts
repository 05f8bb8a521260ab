import type { UploadAnswer } from './added-items.ts'
import { primaryLink } from './added-items.ts'
import { EXIT, UploadFailure, type ExitCode } from './exit-codes.ts'
import { uploadMultipart } from './multipart-upload.ts'
import { createProgress, formatBytes } from './progress.ts'
import { uploadResumable } from './resumable-upload.ts'
import { resumableEndpoint } from './server-routes.ts'
import { openSource } from './upload-source.ts'
import { UploadStateFile } from './upload-state.ts'

/** Above this a file or bundle goes through the resumable protocol, when the server offers it. */
export const RESUMABLE_ABOVE = 32 * 1024 * 1024
/**
 * Bytes per PATCH: all that is left, in one request. Heimdall keeps what a
 * cut request delivered (tus servers should), so a dropped connection costs
 * nothing already received, and one request costs one authentication.
 */
export const CHUNK_BYTES = Number.POSITIVE_INFINITY
/** Back-off before each retry of a failed request: about two minutes in all, then exit 4 (the next run resumes). */
export const RETRY_DELAYS = [0, 1000, 3000, 5000, 10_000, 20_000, 30_000, 60_000]

export interface UploadCommand {
  path: string
  server: string
  token: string
  name: string | undefined
  /** true: always resumable; false: never; undefined: above RESUMABLE_ABOVE. */
  resumable: boolean | undefined
  json: boolean
  statePath: string
}

export interface Terminal {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream & { isTTY?: boolean, columns?: number }
}

/** Runs `heimdall upload`; answers the exit code. Never prints the token. */
export async function runUpload (command: UploadCommand, io: Terminal, signal: AbortSignal): Promise<ExitCode> {
  let progress: ReturnType<typeof createProgress> | undefined
  // Whether an interrupted upload can be continued by running the command again.
  let resumes = false
  try {
    // Credentials in the URL are refused, and never echoed: fetch cannot send them, and they would be printed in errors.
    const server = URL.canParse(command.server) ? new URL(command.server) : undefined
    if (server !== undefined && (server.username !== '' || server.password !== '')) {
      throw new UploadFailure('the server URL carries a user name or password: leave them out (the token is given with --token or HEIMDALL_TOKEN)', EXIT.usage)
    }
    // Heimdall answers at the root of its address: a path would be dropped from every request (a 404 said "will not help").
    if (server !== undefined && (server.pathname !== '/' || server.search !== '' || server.hash !== '')) {
      throw new UploadFailure(`the server URL has a path or query (${server.pathname}${server.search}): give its address alone, such as ${server.origin}`, EXIT.usage)
    }
    // A file or folder that cannot be read is the command's problem (1), not the server's (4).
    const source = await openSource(command.path, command.name, (message) => { io.stderr.write(`${message}\n`) }).catch((err: unknown) => {
      throw err instanceof UploadFailure ? err : new UploadFailure(`cannot read ${command.path}: ${err instanceof Error ? err.message : String(err)}`, EXIT.usage)
    })
    if (signal.aborted) throw new UploadFailure('interrupted', EXIT.interrupted)
    let endpoint: string | undefined
    const wantsResumable = command.resumable ?? source.size > RESUMABLE_ABOVE
    if (wantsResumable) {
      endpoint = await resumableEndpoint(command.server, signal)
      if (endpoint === undefined) io.stderr.write(`${new URL(command.server).origin} offers no resumable uploads: sending it in one request\n`)
    }
    resumes = endpoint !== undefined
    progress = createProgress({ total: source.size, out: io.stderr })
    const what = source.kind === 'bundle' ? `${source.fileName} (a bundle of ${source.files} files, ${formatBytes(source.size)})` : `${source.fileName} (${formatBytes(source.size)})`
    io.stderr.write(`uploading ${what} to ${new URL(command.server).origin}${endpoint === undefined ? '' : ', resumable'}\n`)
    const onProgress = (sent: number): void => {
      progress?.update(sent)
    }
    let answer: UploadAnswer & { text: string }
    if (endpoint === undefined) {
      answer = await uploadMultipart({ server: command.server, token: command.token, source, onProgress, signal })
    } else {
      answer = await uploadResumable({
        endpoint,
        token: command.token,
        source,
        state: new UploadStateFile(command.statePath),
        chunkSize: CHUNK_BYTES,
        retryDelays: RETRY_DELAYS,
        onProgress,
        onNote: (message) => { progress?.note(message) },
        signal
      })
    }
    progress.finish()
    if (command.json) {
      io.stdout.write(`${answer.text.trim()}\n`)
    } else {
      io.stdout.write(`${primaryLink(answer, command.server)}\n`)
      for (const warning of answer.root.warnings ?? []) io.stderr.write(`warning: ${warning}\n`)
    }
    return EXIT.ok
  } catch (err) {
    const failure = err instanceof UploadFailure ? err : new UploadFailure(err instanceof Error ? err.message : String(err), EXIT.unavailable)
    if (failure.exitCode === EXIT.interrupted) {
      io.stderr.write(resumes ? '\ninterrupted: run the same command again to continue the upload where it stopped\n' : '\ninterrupted before the server answered: run the same command again to send it anew\n')
    } else {
      // On its own line, not glued to a progress bar drawn on a terminal.
      if (progress !== undefined) progress.note(`heimdall: ${failure.message}`)
      else io.stderr.write(`heimdall: ${failure.message}\n`)
      if (command.json && typeof failure.body === 'object' && failure.body !== null) io.stdout.write(`${JSON.stringify(failure.body)}\n`)
    }
    return failure.exitCode
  }
}
