/**
 * Whether a tool a test needs is here: under CI=true a missing one is a
 * failure; elsewhere the checks that need it are skipped, loudly.
 */
export function requireTool (name: string, present: boolean, what: string): boolean {
  if (present) return true
  if (process.env.CI === 'true') throw new Error(`${name} is required under CI (Debian: apt-get install ${name})`)
  console.warn(`\n!!!!! SKIPPING the ${name} checks of ${what}: ${name} not found\n`)
  return false
}
