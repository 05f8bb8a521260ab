import type { Knex } from 'knex'
import { LeaseLostError, type PackEntry, type PackedLocation, type PackIndex, type Within } from '../storage/pack-index.ts'
import { SWEEP_LOCK } from './block-lease-repository.ts'
import { LOCK_WAIT } from './query-deadline.ts'

const PAGE = 5000

interface PackedRow {
  block_key: string
  pack: string
  offset: string | number
  length: number
}

/** The S3 store's pack index in PostgreSQL (migration block_packs). */
export class PgPackIndex implements PackIndex {
  readonly #db: Knex

  constructor (db: Knex) {
    this.#db = db
  }

  #on (within: Within): Knex {
    return (within as Knex.Transaction | undefined) ?? this.#db
  }

  async record (pack: string, size: number, blocks: readonly PackEntry[]): Promise<number> {
    return this.#db.transaction(async (trx) => {
      // Shared, as a registration takes it, and the lease read after it in a statement of its own: a sweep that ended the
      // lease and took the object is over and seen, or no sweep can take the object until these rows are in.
      await trx.raw('select pg_advisory_xact_lock_shared(?, ?)', [...SWEEP_LOCK]).options(LOCK_WAIT)
      const leased = await trx<{ block_key: string, lease_id: number }>('block_lease_keys').where({ block_key: pack }).first('lease_id')
      if (leased === undefined) throw new LeaseLostError(pack)
      await trx('block_packs').insert({ name: pack, size })
      // In key order: two imports recording packs that share blocks lock those rows in the same order (no deadlock).
      const result = await trx.raw<{ rowCount: number | null }>(`insert into packed_blocks (block_key, pack, "offset", length)
        select k, ?, o, l from unnest(?::text[], ?::bigint[], ?::int[]) as b(k, o, l)
        order by k
        on conflict (block_key) do nothing`, [pack, blocks.map((b) => b.key), blocks.map((b) => b.offset), blocks.map((b) => b.length)])
      const indexed = result.rowCount ?? 0
      if (indexed === 0) await trx('block_packs').where({ name: pack }).delete()
      return indexed
    })
  }

  async locate (key: string, within?: Within): Promise<PackedLocation | undefined> {
    const result = await this.#on(within).raw<{ rows: Array<PackedRow & { size: string | number }> }>(`select b.pack, b."offset", b.length, p.size
      from packed_blocks b join block_packs p on p.name = b.pack where b.block_key = ?`, [key])
    const row = result.rows[0]
    return row === undefined ? undefined : { pack: row.pack, packSize: Number(row.size), offset: Number(row.offset), length: row.length }
  }

  async * list (): AsyncIterable<{ key: string, size: number }> {
    let after = ''
    for (;;) {
      const rows = await this.#db<PackedRow>('packed_blocks').where('block_key', '>', after).orderBy('block_key').limit(PAGE).select('block_key', 'length')
      for (const row of rows) yield { key: row.block_key, size: row.length }
      const last = rows.at(-1)
      if (last === undefined || rows.length < PAGE) return
      after = last.block_key
    }
  }

  async recorded (packs: readonly string[], within?: Within): Promise<Set<string>> {
    if (packs.length === 0) return new Set()
    const rows = await this.#on(within)<{ name: string }>('block_packs').whereIn('name', packs as string[]).select('name')
    return new Set(rows.map((row) => row.name))
  }

  async remove (keys: readonly string[], within?: Within): Promise<string[]> {
    if (keys.length === 0) return []
    const result = await this.#on(within).raw<{ rows: Array<{ pack: string }> }>('delete from packed_blocks where block_key = any(?::text[]) returning pack', [keys as string[]])
    return [...new Set(result.rows.map((row) => row.pack))]
  }

  async emptied (candidates?: readonly string[]): Promise<string[]> {
    if (candidates?.length === 0) return []
    // A pack is recorded with its rows in one transaction: none is seen empty before its blocks are in.
    const result = await this.#db.raw<{ rows: Array<{ name: string }> }>(`delete from block_packs p
      where ${candidates === undefined ? 'true' : 'p.name = any(?::text[])'}
      and not exists (select 1 from packed_blocks b where b.pack = p.name)
      returning p.name`, candidates === undefined ? [] : [candidates as string[]])
    return result.rows.map((row) => row.name)
  }

  async sparse (fraction: number, limit: number): Promise<Array<{ name: string, size: number, live: number }>> {
    const result = await this.#db.raw<{ rows: Array<{ name: string, size: string, live: string }> }>(`select p.name, p.size, coalesce(sum(b.length), 0) as live
      from block_packs p left join packed_blocks b on b.pack = p.name
      group by p.name, p.size
      having coalesce(sum(b.length), 0) > 0 and coalesce(sum(b.length), 0) < p.size * ?::float8
      order by live
      limit ?`, [fraction, limit])
    return result.rows.map((row) => ({ name: row.name, size: Number(row.size), live: Number(row.live) }))
  }

  async blocksOf (pack: string, within?: Within): Promise<PackEntry[]> {
    const rows = await this.#on(within)<PackedRow>('packed_blocks').where({ pack }).orderBy('offset').select('block_key', 'offset', 'length')
    return rows.map((row) => ({ key: row.block_key, offset: Number(row.offset), length: row.length }))
  }

  async move (to: string, size: number, entries: ReadonlyArray<PackEntry & { from: string }>, within?: Within): Promise<void> {
    const db = this.#on(within)
    await db('block_packs').insert({ name: to, size })
    await db.raw(`update packed_blocks b set pack = ?, "offset" = m.o, length = m.l
      from unnest(?::text[], ?::text[], ?::bigint[], ?::int[]) as m(k, f, o, l)
      where b.block_key = m.k and b.pack = m.f`, [to, entries.map((e) => e.key), entries.map((e) => e.from), entries.map((e) => e.offset), entries.map((e) => e.length)])
  }
}
