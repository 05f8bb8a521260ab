import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Database } from '../../src/db/database.ts'
import { IdentityRepository, type Identity } from '../../src/db/identity-repository.ts'
import { SessionRepository } from '../../src/db/session-repository.ts'
import { MAX_SESSIONS_PER_IDENTITY, SESSION_SECONDS, SessionService } from '../../src/services/session-service.ts'
import { databaseFactories } from '../support/databases.ts'

const DAY = 24 * 3600 * 1000

for (const factory of databaseFactories()) {
  describe.skipIf(!factory.available)(`browser sessions on ${factory.name}`, () => {
    let db: Database
    let dispose: () => Promise<void>
    let identities: IdentityRepository
    let repository: SessionRepository
    let alice: Identity
    let bob: Identity

    beforeEach(async () => {
      ({ db, dispose } = await factory.open())
      await db.migrate()
      identities = new IdentityRepository(db.knex)
      repository = new SessionRepository(db.knex)
      alice = await identities.create('alice', 'a'.repeat(64))
      bob = await identities.create('bob', 'b'.repeat(64))
    })
    afterEach(async () => { await dispose() })

    const count = async (): Promise<number> => {
      const [row] = await db.knex('sessions').count<Array<{ n: string | number }>>({ n: '*' })
      return Number(row?.n ?? 0)
    }

    it('finds a live session\'s identity by its hash, and nothing once it has expired', async () => {
      const now = new Date('2026-11-25T12:00:00Z')
      await repository.create('1'.repeat(64), alice.id, new Date(now.getTime() + DAY))
      expect(await repository.findIdentity('1'.repeat(64), now)).toEqual(alice)
      expect(await repository.findIdentity('2'.repeat(64), now)).toBeUndefined()
      expect(await repository.findIdentity('1'.repeat(64), new Date(now.getTime() + DAY))).toBeUndefined()
    })

    it('deletes one session, all of an identity\'s, the expired ones, and those of a deleted identity', async () => {
      const now = new Date('2026-11-25T12:00:00Z')
      const later = new Date(now.getTime() + DAY)
      await repository.create('1'.repeat(64), alice.id, later)
      await repository.create('2'.repeat(64), alice.id, later)
      await repository.create('3'.repeat(64), bob.id, later)
      await repository.create('4'.repeat(64), bob.id, new Date(now.getTime() - 1000))

      await repository.delete('1'.repeat(64))
      expect(await repository.findIdentity('1'.repeat(64), now)).toBeUndefined()
      expect(await repository.findIdentity('2'.repeat(64), now)).toEqual(alice)

      expect(await repository.deleteExpired(now)).toBe(1)
      expect(await repository.deleteByIdentity(alice.id)).toBe(1)
      expect(await repository.findIdentity('3'.repeat(64), now)).toEqual(bob)
      expect(await count()).toBe(1)

      await db.knex('identities').where({ id: bob.id }).delete()
      expect(await count()).toBe(0)
    })

    it('an identity keeps its newest sessions up to the cap: a sign-in beyond it ends the oldest, not another identity\'s', async () => {
      const clock = Date.parse('2026-11-25T12:00:00Z')
      const sessions = new SessionService(repository, () => clock)
      const bobs = await sessions.start(bob)
      const started = []
      for (let i = 0; i < MAX_SESSIONS_PER_IDENTITY + 5; i++) started.push(await sessions.start(alice))
      expect(await count()).toBe(MAX_SESSIONS_PER_IDENTITY + 1)
      for (const [i, session] of started.entries()) expect(await sessions.identify(session.id)).toEqual(i < 5 ? undefined : alice)
      expect(await sessions.identify(bobs.id)).toEqual(bob)
    })

    it('SessionService: stores only the hash, ends sessions, revokes all of an identity\'s, purges expired ones', async () => {
      let clock = Date.parse('2026-11-25T12:00:00Z')
      const sessions = new SessionService(repository, () => clock)
      const first = await sessions.start(alice)
      const second = await sessions.start(alice)
      const bobs = await sessions.start(bob)
      expect(first.id).toMatch(/^[\w-]{43}$/)
      expect(first.expiresAt.getTime()).toBe(clock + SESSION_SECONDS * 1000)
      expect(JSON.stringify(await db.knex('sessions'))).not.toContain(first.id)

      expect(await sessions.identify(first.id)).toEqual(alice)
      expect(await sessions.identify('not a session id')).toBeUndefined()
      await sessions.end(first.id)
      expect(await sessions.identify(first.id)).toBeUndefined()
      expect(await sessions.identify(second.id)).toEqual(alice)

      expect(await sessions.revokeAll(alice.id)).toBe(1)
      expect(await sessions.identify(second.id)).toBeUndefined()
      expect(await sessions.identify(bobs.id)).toEqual(bob)

      clock += SESSION_SECONDS * 1000
      expect(await sessions.identify(bobs.id)).toBeUndefined()
      expect(await count()).toBe(1)
      // Starting a session purges the expired ones.
      await sessions.start(alice)
      expect(await count()).toBe(1)
    })
  })
}
