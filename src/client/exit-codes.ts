/**
 * The command's exit codes, which scripts may rely on: one per thing a
 * script would do differently (fix the command, fix the file, fix the
 * credentials, try again later).
 */
export const EXIT = {
  /** Uploaded. */
  ok: 0,
  /** The command was wrong: unknown flag, missing file or token. Nothing was sent. */
  usage: 1,
  /** The server refused the upload (4xx): its type, content, references, size or quota. Sending it again will not help. */
  refused: 2,
  /** The server refused the credentials (401) or their rights (403). */
  authentication: 3,
  /** The server could not be reached, answered 5xx or 429, or the connection kept failing after retries: try again later (a resumable upload continues where it stopped). */
  unavailable: 4,
  /** Interrupted (Ctrl-C); a resumable upload continues when the same command runs again. */
  interrupted: 130
} as const

export type ExitCode = typeof EXIT[keyof typeof EXIT]

/** The JSON errors of Heimdall: `{ "error", "code", "details" }`. */
export interface ServerError {
  error?: unknown
  code?: unknown
  details?: unknown
}

/** An upload that did not succeed, with the exit code it ends the command with. */
export class UploadFailure extends Error {
  override readonly name = 'UploadFailure'
  readonly exitCode: ExitCode
  /** The server's answer, when there was one. */
  readonly status: number | undefined
  readonly body: unknown

  constructor (message: string, exitCode: ExitCode, status?: number, body?: unknown) {
    super(message)
    this.exitCode = exitCode
    this.status = status
    this.body = body
  }
}

/** The exit code an HTTP error status ends the command with. */
export function exitCodeFor (status: number): ExitCode {
  if (status === 401 || status === 403) return EXIT.authentication
  if (status === 429 || status >= 500) return EXIT.unavailable
  return EXIT.refused
}

/** An error answer as a failure: the server's own message and details, else its status. */
export function failureFromAnswer (status: number, text: string): UploadFailure {
  let body: unknown = text
  try { body = JSON.parse(text) } catch { /* not JSON: a proxy's page */ }
  const problem = (typeof body === 'object' && body !== null ? body : {}) as ServerError
  const details = Array.isArray(problem.details) ? problem.details.filter((d): d is string => typeof d === 'string') : []
  const message = typeof problem.error === 'string' ? problem.error : `the server answered ${status}`
  return new UploadFailure([`${message} (${status})`, ...details.map((d) => `  ${d}`)].join('\n'), exitCodeFor(status), status, body)
}
