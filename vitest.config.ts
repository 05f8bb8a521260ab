import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Each file opens its own embedded node and database; two cores, two workers.
    maxWorkers: 2,
    reporters: ['default', './test/support/summary-reporter.ts']
  }
})
