import { randomUUID } from 'node:crypto'
import type { Knex } from 'knex'
import { runStatement, Statement } from './prepared-statements.ts'

export interface PinIntent {
  id: number
  rootCid: string
  instance: string
  createdAt: Date
}

/** What the name of every import's pin begins with (Kubo's pin names; `ipfs pin ls --names`). */
export const IMPORT_PIN_PREFIX = 'heimdall-import-'

/** A pin an import may make before its root is known, by the name it carries (see the import_pin_intents migration). */
export interface ImportPinIntent {
  id: number
  pinName: string
  instance: string
  createdAt: Date
}

interface ImportPinIntentRow {
  id: number
  pin_name: string
  instance: string
  created_at: Date | string
}

interface PinIntentRow {
  id: number
  root_cid: string
  instance: string
  created_at: Date | string
}

// What every upload writes and removes.
const ADD = new Statement('insert into pin_intents (root_cid, instance) values ($1, $2) returning id')
const REMOVE = new Statement('delete from pin_intents where id = $1')
const ADD_IMPORT_PIN = new Statement('insert into import_pin_intents (pin_name, instance) values ($1, $2) returning id')
const REMOVE_IMPORT_PIN = new Statement('delete from import_pin_intents where id = $1')

/** The journal of pins being changed (see the pin_intents and import_pin_intents migrations). */
export class PinIntentRepository {
  readonly #db: Knex

  constructor (db: Knex) {
    this.#db = db
  }

  async add (rootCid: string, instance: string): Promise<number> {
    const [row] = await runStatement<{ id: number }>(this.#db, ADD, [rootCid, instance])
    if (row === undefined) throw new Error('insert returned no row')
    return row.id
  }

  /** Rows for any of `forms` (a root's spellings) but those `except` names: work on the root whose outcome is not settled yet. */
  async countOthers (forms: readonly string[], except: ReadonlyArray<number | undefined>): Promise<number> {
    const [row] = await this.#others(forms, except).count<Array<{ n: string | number }>>({ n: '*' })
    return Number(row?.n ?? 0)
  }

  /** Removes the rows countOthers counts. */
  async removeOthers (forms: readonly string[], except: ReadonlyArray<number | undefined>): Promise<void> {
    await this.#others(forms, except).delete()
  }

  #others (forms: readonly string[], except: ReadonlyArray<number | undefined>): Knex.QueryBuilder<PinIntentRow> {
    const query = this.#db<PinIntentRow>('pin_intents').whereIn('root_cid', forms as string[])
    const ids = except.filter((id) => id !== undefined)
    return ids.length > 0 ? query.whereNotIn('id', ids) : query
  }

  async remove (id: number): Promise<void> {
    await runStatement(this.#db, REMOVE, [id])
  }

  /** Rows of `instance` written before `ownBefore`, and anyone's written before `anyBefore`: work no live process is still doing. */
  async unsettled (instance: string, ownBefore: Date, anyBefore: Date): Promise<PinIntent[]> {
    const rows = await this.#unsettledRows<PinIntentRow>('pin_intents', instance, ownBefore, anyBefore)
    return rows.map((row) => ({ id: row.id, rootCid: row.root_cid, instance: row.instance, createdAt: new Date(row.created_at) }))
  }

  async #unsettledRows<Row extends object> (table: string, instance: string, ownBefore: Date, anyBefore: Date): Promise<Row[]> {
    return this.#db<Row>(table)
      .where((q) => { void q.where('instance', instance).andWhere('created_at', '<', ownBefore) })
      .orWhere('created_at', '<', anyBefore)
      .orderBy('id')
      .limit(1000) as Promise<Row[]>
  }

  /** A row for a pin an import is about to make: the name the pin will carry, unique to it. */
  async addImportPin (instance: string): Promise<{ id: number, pinName: string }> {
    const pinName = `${IMPORT_PIN_PREFIX}${randomUUID()}`
    const [row] = await runStatement<{ id: number }>(this.#db, ADD_IMPORT_PIN, [pinName, instance])
    if (row === undefined) throw new Error('insert returned no row')
    return { id: row.id, pinName }
  }

  /** Dates the row from now: its settling waits as long again (an add that failed may still be ending in the node). */
  async touchImportPin (id: number): Promise<void> {
    await this.#db('import_pin_intents').where({ id }).update({ created_at: this.#db.fn.now() })
  }

  async removeImportPin (id: number): Promise<void> {
    await runStatement(this.#db, REMOVE_IMPORT_PIN, [id])
  }

  /** As `unsettled`, for the pins of imports. */
  async unsettledImportPins (instance: string, ownBefore: Date, anyBefore: Date): Promise<ImportPinIntent[]> {
    const rows = await this.#unsettledRows<ImportPinIntentRow>('import_pin_intents', instance, ownBefore, anyBefore)
    return rows.map((row) => ({ id: row.id, pinName: row.pin_name, instance: row.instance, createdAt: new Date(row.created_at) }))
  }
}
