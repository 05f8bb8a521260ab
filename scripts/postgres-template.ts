/**
 * Makes the embedded PostgreSQL's template cluster for this installation
 * (.cache/postgres-template, see src/db/cluster-template.ts) if it has none
 * for these binaries and settings, so that the first start on an empty data
 * folder copies a cluster instead of running initdb (about a second of CPU).
 * `npm ci` runs it (postinstall) and the Docker build runs it as the image's
 * user; a start makes the template itself when there is none, so this is an
 * optimisation only: it never fails (an install without the embedded
 * PostgreSQL's binaries, a folder it cannot write), it says why once.
 * Usage: node scripts/postgres-template.ts
 */
try {
  const started = performance.now()
  const { prepareClusterTemplate } = await import('../src/db/embedded-postgres.ts')
  const { dir, made } = await prepareClusterTemplate()
  if (made) console.log(`postgres-template: made ${dir} in ${((performance.now() - started) / 1000).toFixed(1)} s`)
} catch (err) {
  console.warn(`postgres-template: no template cluster (${err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err)}); the first start on an empty DATA_DIR runs initdb instead`)
}
