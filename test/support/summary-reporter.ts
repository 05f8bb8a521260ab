import type { Reporter, TestModule } from 'vitest/node'

/** Ends every run with the plain line CI reads: `Heimdall: N passed, N failed, N skipped`. */
export default class SummaryReporter implements Reporter {
  onTestRunEnd (testModules: readonly TestModule[]): void {
    const counts = { passed: 0, failed: 0, skipped: 0 }
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state
        if (state === 'passed') counts.passed++
        else if (state === 'failed') counts.failed++
        else counts.skipped++
      }
      if (module.state() === 'failed' && [...module.children.allTests()].length === 0) counts.failed++
    }
    process.stdout.write(`\nHeimdall: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`)
  }
}
