import type { Knex } from 'knex'
import { IDENTITY_COLUMNS, toIdentity, type Identity, type IdentityRow } from './identity-repository.ts'
import { runStatement, Statement } from './prepared-statements.ts'

interface SessionRow {
  id_hash: string
  identity_id: number
  created_at: Date | string
  expires_at: Date | string
}

/** The identity of the session $1 if it is unexpired at $2: every request from a browser asks this. */
const IDENTITY_OF_SESSION = new Statement(`select ${IDENTITY_COLUMNS.join(', ')} from sessions join identities on identities.id = sessions.identity_id
  where sessions.id_hash = $1 and sessions.expires_at > $2 limit 1`)

/** Browser sessions, by the sha256 of their id; the id itself is never stored. */
export class SessionRepository {
  readonly #db: Knex

  constructor (db: Knex) {
    this.#db = db
  }

  /**
   * Starts a session; with `cap`, the identity's oldest sessions live at
   * `cap.now` beyond the `cap.keep - 1` newest end first, in the same
   * transaction, so that it never has more than `cap.keep` live (two
   * sign-ins at the same moment may each keep theirs).
   */
  async create (idHash: string, identityId: number, expiresAt: Date, cap?: { keep: number, now: Date }): Promise<void> {
    await this.#db.transaction(async (trx) => {
      if (cap !== undefined) {
        // Live ones only: the expired are SessionService's purge's, and two deletes of the same rows in different
        // orders could deadlock.
        const newest = trx<SessionRow>('sessions').where({ identity_id: identityId }).andWhere('expires_at', '>', cap.now).orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id_hash', order: 'desc' }]).offset(Math.max(0, cap.keep - 1)).select('id_hash')
        await trx<SessionRow>('sessions').whereIn('id_hash', newest).delete()
      }
      await trx<SessionRow>('sessions').insert({ id_hash: idHash, identity_id: identityId, expires_at: expiresAt })
    })
  }

  /** The identity of a session unexpired at `now`, in one query. */
  async findIdentity (idHash: string, now: Date): Promise<Identity | undefined> {
    const [row] = await runStatement<IdentityRow>(this.#db, IDENTITY_OF_SESSION, [idHash, now])
    return row === undefined ? undefined : toIdentity(row)
  }

  async delete (idHash: string): Promise<void> {
    await this.#db<SessionRow>('sessions').where({ id_hash: idHash }).delete()
  }

  /** Ends every session of an identity; returns how many there were. */
  async deleteByIdentity (identityId: number): Promise<number> {
    return this.#db<SessionRow>('sessions').where({ identity_id: identityId }).delete()
  }

  /** Removes the sessions expired at `now`; returns how many. */
  async deleteExpired (now: Date): Promise<number> {
    return this.#db<SessionRow>('sessions').where('expires_at', '<=', now).delete()
  }
}
