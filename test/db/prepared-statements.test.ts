import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Knex } from 'knex'
import type { Database } from '../../src/db/database.ts'
import { IdentityRepository } from '../../src/db/identity-repository.ts'
import { runStatement, Statement, statementName } from '../../src/db/prepared-statements.ts'
import { SessionRepository } from '../../src/db/session-repository.ts'
import { databaseFactories } from '../support/databases.ts'

/** The statements prepared on the connection `trx` holds. */
async function prepared (trx: Knex.Transaction): Promise<Array<{ name: string, statement: string }>> {
  const { rows } = await trx.raw<{ rows: Array<{ name: string, statement: string }> }>('select name, statement from pg_prepared_statements')
  return rows
}

for (const factory of databaseFactories()) {
  describe.skipIf(!factory.available)(`prepared statements on ${factory.name}`, () => {
    let db: Database
    let dispose: () => Promise<void>

    beforeEach(async () => {
      ({ db, dispose } = await factory.open())
      await db.migrate()
    })
    afterEach(async () => { await dispose() })

    it('a statement is prepared on its connection under the name its text gives, once; a query of knex\'s is not', async () => {
      const statement = new Statement('select $1::int as x')
      await db.knex.transaction(async (trx) => {
        for (let i = 0; i < 3; i++) expect(await runStatement(trx, statement, [i])).toEqual([{ x: i }])
        await trx.raw('select ?::int + 1 as y', [1])
        expect(await prepared(trx)).toEqual([{ name: statementName('select $1::int as x'), statement: 'select $1::int as x' }])
      })
    })

    it('a statement is refused on a transaction that has ended, as knex refuses its own queries', async () => {
      let ended: Knex.Transaction | undefined
      await db.knex.transaction((trx) => { ended = trx; return Promise.resolve() })
      await expect(runStatement(ended as Knex.Transaction, new Statement('select 1 as x'), [])).rejects.toThrow('Transaction query already complete')
    })

    it('a statement gone stale (a column\'s type changed under it) fails once: its connection goes, the next use prepares it afresh', async () => {
      await db.knex.raw('create table probe (x integer)')
      await db.knex('probe').insert({ x: 1 })
      const statement = new Statement('select x from probe')
      const marked = async (): Promise<unknown> => runStatement(db.knex, statement, [])
      // Prepared on as many of the pool's connections as a burst takes.
      for (let i = 0; i < 3; i++) await Promise.all(Array.from({ length: 10 }, marked))
      await db.knex.raw('alter table probe alter column x type bigint')
      let failures = 0
      for (;;) {
        const outcome = await marked().then(() => 'ok', (err: { code?: string }) => err.code)
        if (outcome === 'ok') break
        expect(outcome).toBe('0A000')
        failures++
        expect(failures).toBeLessThanOrEqual(10)
      }
      for (let i = 0; i < 20; i++) expect(await marked()).toEqual([{ x: '1' }])
    })

    it('a sign-in\'s statements keep answering, with the same identity, after another instance\'s migration adds a column', async () => {
      await db.knex.transaction(async (trx) => {
        const identities = new IdentityRepository(trx)
        const sessions = new SessionRepository(trx)
        const alice = await identities.create('alice', 'a'.repeat(64))
        const now = new Date()
        await sessions.create('1'.repeat(64), alice.id, new Date(now.getTime() + 60_000))
        expect(await identities.findByTokenHash('a'.repeat(64))).toEqual(alice)
        expect(await sessions.findIdentity('1'.repeat(64), now)).toEqual(alice)
        expect((await prepared(trx)).length).toBe(2)
        // A prepared `select *` fails here: "cached plan must not change result type".
        await trx.raw('alter table identities add column added_by_a_later_version text')
        await trx.raw('alter table sessions add column added_by_a_later_version text')
        expect(await identities.findByTokenHash('a'.repeat(64))).toEqual(alice)
        expect(await sessions.findIdentity('1'.repeat(64), now)).toEqual(alice)
      })
    })
  })
}
