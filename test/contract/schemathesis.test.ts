import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIdentity, startTestHeimdall, type TestHeimdall } from '../support/heimdall-harness.ts'

const run = promisify(execFile)
/** The version .ci/run installs. */
const SCHEMATHESIS = '4.32.5'

const installed = await run('schemathesis', ['--version']).then(({ stdout }) => stdout.includes(SCHEMATHESIS), () => false)
if (!installed) {
  if (process.env.CI === 'true') throw new Error(`schemathesis ${SCHEMATHESIS} is required under CI=true (.ci/run installs it)`)
  console.warn(`\n*** SKIPPING the schemathesis run: python3 -m pip install schemathesis==${SCHEMATHESIS} to run it ***\n`)
}

/**
 * A property-based fuzzing pass over the whole described API, as an outside
 * client would make it: schemathesis reads /openapi.json and sends generated
 * requests, valid and invalid, to a real server. No answer may be a 5xx, and
 * every answer must match the description (status, content type, headers,
 * body schema). Bounded: a few examples per operation, one worker.
 */
describe.skipIf(!installed)('schemathesis against /openapi.json', () => {
  let t: TestHeimdall
  let url: string
  let token: string
  beforeAll(async () => {
    t = await startTestHeimdall()
    url = (await t.listen()).url
    token = (await createIdentity(t.request, 'fuzzer')).token
  })
  afterAll(async () => { await t.close() })

  it('finds no server error and no answer that breaks the description', async () => {
    const args = [
      'run', `${url}/openapi.json`, '--url', url,
      '-H', `Authorization: Bearer ${token}`,
      '--checks', 'not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance',
      '--max-examples', '8', '--workers', '1', '--seed', process.env.SCHEMATHESIS_SEED ?? '20261125', '--no-color',
      // Replacing the token would sign the fuzzer out for the rest of the run.
      '--exclude-operation-id', 'rotateToken'
    ]
    // In the test's DATA_DIR: schemathesis keeps its example database in the working folder.
    const result = await run('schemathesis', args, { cwd: t.dataDir, timeout: 240_000, maxBuffer: 32 * 1024 * 1024 }).then(
      ({ stdout }) => ({ code: 0, output: stdout }),
      (err: { code?: number, stdout?: string, stderr?: string }) => ({ code: err.code ?? -1, output: `${err.stdout ?? ''}\n${err.stderr ?? ''}` })
    )
    if (result.code !== 0) console.error(result.output.slice(-12_000))
    expect(result.code).toBe(0)
    expect(result.output).toMatch(/No issues found|passed/i)
  }, 300_000)
})
