import type { TestProject } from 'vitest/node'
import { buildWeb } from '../scripts/build-web.ts'
import { ensureKuboBinary } from './support/kubo.ts'
import { startPostgresServer, type PostgresServer } from './support/postgres-server.ts'
import { ensureSeaweedBinary } from './support/seaweedfs.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the real PostgreSQL server the suite started; '' when none could be started locally. */
    postgresUrl: string
    /** Path of the Kubo binary the suite built; '' when it could not be built locally. */
    kuboBin: string
    /** Path of the SeaweedFS (weed) binary the suite built; '' when it could not be built locally. */
    seaweedBin: string
  }
}

let server: PostgresServer | undefined

/**
 * Starts one real PostgreSQL server for the whole run. Outside CI a machine
 * without PostgreSQL skips those tests loudly; under CI=true it is a failure.
 */
export async function setup (project: TestProject): Promise<void> {
  await buildWeb()
  const [postgres, kubo, seaweed] = await Promise.allSettled([startPostgresServer(), ensureKuboBinary(), ensureSeaweedBinary()])
  if (postgres.status === 'fulfilled') {
    server = postgres.value
    project.provide('postgresUrl', server.url)
  } else {
    if (process.env.CI === 'true') throw postgres.reason
    console.warn(`\n\n!!!!! SKIPPING every real-PostgreSQL test: ${String(postgres.reason)}\n!!!!! Install PostgreSQL (Debian: apt-get install postgresql) to run them.\n\n`)
    project.provide('postgresUrl', '')
  }
  if (kubo.status === 'fulfilled') {
    project.provide('kuboBin', kubo.value)
  } else {
    if (process.env.CI === 'true') throw kubo.reason
    console.warn(`\n\n!!!!! SKIPPING every real-Kubo test: ${String(kubo.reason)}\n!!!!! They need Go and the Go module proxy to build Kubo.\n\n`)
    project.provide('kuboBin', '')
  }
  if (seaweed.status === 'fulfilled') {
    project.provide('seaweedBin', seaweed.value)
  } else {
    if (process.env.CI === 'true') throw seaweed.reason
    console.warn(`\n\n!!!!! SKIPPING every SeaweedFS/S3 test: ${String(seaweed.reason)}\n!!!!! They need Go and the Go module proxy to build SeaweedFS.\n\n`)
    project.provide('seaweedBin', '')
  }
}

export async function teardown (): Promise<void> {
  await server?.stop()
}
