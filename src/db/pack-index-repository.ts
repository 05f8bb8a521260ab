import type { Knex } from 'knex'
import type { PackEntry, PackedLocation, PackIndex, Within } from '../storage/pack-index.ts'

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
      await trx('block_packs').insert({ name: pack, size })
      const result = await trx.raw<{ rowCount: number | null }>(`insert into packed_blocks (block_key, pack, "offset", length)
        select k, ?, o, l from unnest(?::text[], ?::bigint[], ?::int[]) as b(k, o, l)
        on conflict (block_key) do nothing`, [pack, blocks.map((b) => b.key), blocks.map((b) => b.offset), blocks.map((b) => b.length)])
      const indexed = result.rowCount ?? 0
      if (indexed === 0) await trx('block_packs').where({ name: pack }).delete()
      return indexed
    })
  }

  async locate (key: string): Promise<PackedLocation | undefined> {
    const row = await this.#db<PackedRow>('packed_blocks').where({ block_key: key }).first('pack', 'offset', 'length')
    return row === undefined ? undefined : { pack: row.pack, offset: Number(row.offset), length: row.length }
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
    const db = this.#on(within)
    const result = await db.raw<{ rows: Array<{ name: string }> }>(`with gone as (delete from packed_blocks where block_key = any(?::text[]) returning pack),
      touched as (select distinct pack from gone)
      delete from block_packs p using touched t
      where p.name = t.pack and not exists (select 1 from packed_blocks b where b.pack = t.pack and b.block_key <> all(?::text[]))
      returning p.name`, [keys as string[], keys as string[]])
    return result.rows.map((row) => row.name)
  }
}
