import { config as loadDotenv } from 'dotenv'
import { ConfigError, loadConfig } from '../config.ts'
import { openDatabase } from '../db/database.ts'

/** `npm run migrate`: applies pending migrations to the configured database (start-up does this too). */
loadDotenv({ quiet: true })
try {
  const config = loadConfig(process.env)
  const db = await openDatabase(config)
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
