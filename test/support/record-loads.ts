/**
 * Loaded with `node --import` into a process under test: appends the URL of
 * every module the process loads (imports and requires; a URL only resolved,
 * as by `import.meta.resolve`, is not loaded), one a line, to the file named
 * by LOAD_LOG. Node resolves through symlinks, so a package that
 * package.json's overrides replace with stubs/<name> shows as …/stubs/….
 */
import { appendFileSync } from 'node:fs'
import { registerHooks } from 'node:module'

const log = process.env.LOAD_LOG
if (log === undefined || log === '') throw new Error('record-loads.ts needs LOAD_LOG, the file to append to')

registerHooks({
  load (url, context, nextLoad) {
    appendFileSync(log, `${url}\n`)
    return nextLoad(url, context)
  }
})
