import type { TestProject } from 'vitest/node'
import { startPostgresServer, type PostgresServer } from './support/postgres-server.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the real PostgreSQL server the suite started; '' when none could be started locally. */
    postgresUrl: string
  }
}

let server: PostgresServer | undefined

/**
 * Starts one real PostgreSQL server for the whole run. Outside CI a machine
 * without PostgreSQL skips those tests loudly; under CI=true it is a failure.
 */
export async function setup (project: TestProject): Promise<void> {
  try {
    server = await startPostgresServer()
    project.provide('postgresUrl', server.url)
  } catch (err) {
    if (process.env.CI === 'true') throw err
    console.warn(`\n\n!!!!! SKIPPING every real-PostgreSQL test: ${String(err)}\n!!!!! Install PostgreSQL (Debian: apt-get install postgresql) to run them.\n\n`)
    project.provide('postgresUrl', '')
  }
}

export async function teardown (): Promise<void> {
  await server?.stop()
}
