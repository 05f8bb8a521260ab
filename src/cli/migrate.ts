import { config as loadDotenv } from 'dotenv'
import { ConfigError, loadConfig } from '../config.ts'
import { openOperatorDatabase } from './operator.ts'

/** `npm run migrate`: applies pending migrations to the configured database (start-up does this too). */
loadDotenv({ quiet: true })
try {
  const config = loadConfig(process.env)
  // The running service's embedded server when it is up: another started there would have stopped it.
  const db = await openOperatorDatabase(config)
  try {
    await db.migrate()
    console.log(`migrations applied (${db.kind})`)
  } finally {
    await db.close()
  }
} catch (err) {
  if (err instanceof ConfigError) {
    for (const issue of err.issues) console.error(`configuration error: ${issue}`)
  } else {
    console.error('migration failed:', err)
  }
  process.exit(1)
}
