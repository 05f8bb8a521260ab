import { parseArgs } from 'node:util'
import { EXIT } from '../client/exit-codes.ts'
import { runUpload } from '../client/upload-command.ts'
import { defaultStatePath } from '../client/upload-state.ts'

const HELP = `heimdall: the command-line client of a Heimdall server

usage: npx heimdall upload <file|folder> [--server URL] [--token T] [options]

Uploads one asset (.glb, .fbx, .fst, a texture, a .zip or .car …) or a folder,
which is sent as a zip bundle made while it is sent (stored entries, relative
paths kept: textures/skin.png; hidden files left out), and prints the link to
open in Overte (the .fst, else the model, else the file) on standard output,
and the server's warnings on standard error.

Options:
  --server URL      the Heimdall server (env HEIMDALL_SERVER; default http://localhost:8080)
  --token T         your token or an API key with the upload scope (env HEIMDALL_TOKEN,
                    better: a flag shows in the process list). Never printed.
  --name NAME       the upload's name (default: the file's, or the folder's)
  --resumable       always use the resumable protocol (tus)
  --no-resumable    never: one multipart POST /upload, as the Blender add-on sends
                    (default: resumable above 32 MiB, when the server offers it)
  --json            print the server's JSON answer instead of the link (its error, on failure)
  -h, --help        this help

A resumable upload sends what the server lacks in one request; a dropped
connection is retried with back-off (about two minutes in all) from the
server's offset (asked with HEAD). The upload's URL
is kept in $XDG_CACHE_HOME/heimdall/uploads.json (~/.cache/…) by server, path,
size and modification time (of every file, for a folder), so running the same
command again after Ctrl-C, a crash or exit code 4 continues where it stopped.
A folder's zip has a size known in advance, so it resumes too.

Progress goes to standard error: one updating line on a terminal (bytes, rate,
time left), else a line at the start, every 10 % and the end.

Exit codes:
  0  uploaded
  1  usage: a wrong flag or command, a --server that is not an http(s) URL,
     no such file or folder, an empty folder, no token; nothing was sent
  2  refused by the server: any error status but 401, 403, 429 and 5xx (400,
     404, 413, 415, 422…): type, content, a missing referenced file, too
     large, no room left in the bytes quota; sending it again will not help
  3  authentication or rights: 401 (the token or key was refused) and every
     403: an API key without the upload scope, a disabled identity, the
     quota's number of uploads used, blocked content
  4  the server could not be reached, answered 429 or 5xx (or a success without
     its list of added items), or the connection kept failing: try again later
     (a resumable upload then continues)
  130 interrupted (Ctrl-C or SIGTERM)
`

function usageError (message: string): never {
  process.stderr.write(`heimdall: ${message}\n(npx heimdall --help for usage)\n`)
  process.exit(EXIT.usage)
}

let parsed
try {
  parsed = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    allowNegative: true,
    options: {
      server: { type: 'string' },
      token: { type: 'string' },
      name: { type: 'string' },
      resumable: { type: 'boolean' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
} catch (err) {
  usageError(err instanceof Error ? err.message : String(err))
}
const { values, positionals } = parsed
const [command, path, ...extra] = positionals
if (values.help || command === undefined || command === 'help') {
  process.stdout.write(HELP)
  process.exit(command === undefined && !values.help ? EXIT.usage : EXIT.ok)
}
if (command !== 'upload') usageError(`unknown command "${command}"`)
if (path === undefined) usageError('upload what? give a file or a folder')
if (extra.length > 0) usageError(`one file or folder at a time (also got ${extra.join(' ')})`)

const server = values.server ?? process.env.HEIMDALL_SERVER ?? 'http://localhost:8080'
try {
  if (!/^https?:$/.test(new URL(server).protocol)) throw new Error()
} catch {
  usageError(`--server must be an http:// or https:// URL, not "${server}"`)
}
const token = values.token ?? process.env.HEIMDALL_TOKEN
if (token === undefined || token === '') usageError('no token: pass --token or set HEIMDALL_TOKEN')

const controller = new AbortController()
const interrupt = (): void => { controller.abort() }
process.once('SIGINT', interrupt)
process.once('SIGTERM', interrupt)
process.exitCode = await runUpload({
  path,
  server,
  token,
  name: values.name,
  resumable: values.resumable,
  json: values.json,
  statePath: defaultStatePath(process.env)
}, { stdout: process.stdout, stderr: process.stderr }, controller.signal)
