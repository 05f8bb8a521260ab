/**
 * Builds the Go programs the test suite runs (Kubo, SeaweedFS) into .cache/
 * before `npm test`, so the suite's global setup finds them cached and CI
 * shows the build on its own line. A cached binary is a no-op.
 * Usage: node scripts/test-binaries.ts
 */
import { ensureKuboBinary } from '../test/support/kubo.ts'
import { ensureSeaweedBinary } from '../test/support/seaweedfs.ts'

async function timed (name: string, build: () => Promise<string>): Promise<void> {
  const started = performance.now()
  const bin = await build()
  console.log(`test-binaries: ${name} ready in ${((performance.now() - started) / 1000).toFixed(1)} s: ${bin}`)
}

// One after the other: each `go build` already uses every core.
await timed('kubo', ensureKuboBinary)
await timed('seaweedfs', ensureSeaweedBinary)
