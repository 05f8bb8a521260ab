import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { setTimeout as sleep } from 'node:timers/promises'
import { openPostgres, type Database } from '../../src/db/database.ts'
import { PgAdvisoryLock } from '../../src/db/advisory-lock.ts'
import { DirectoryMigrationSource } from '../../src/db/migration-source.ts'
import { PgPinStore } from '../../src/db/pin-repository.ts'
import { LOCK_WAIT } from '../../src/db/query-deadline.ts'
import { databaseFactories } from '../support/databases.ts'
import { freezableRelay } from '../support/frozen-relay.ts'
import { canDropPackets, dropBetween } from '../support/packet-drop.ts'
import { requireTool } from '../support/tools.ts'

/** The CIDv0 of an empty UnixFS directory and its CIDv1 (base32). */
const V0 = CID.parse('QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn')
const V0_AS_V1 = 'bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354'

async function rawCid (text: string): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(text)))
}

async function collect (pins: AsyncIterable<CID>): Promise<string[]> {
  const out: string[] = []
  for await (const cid of pins) out.push(cid.toString())
  return out
}

/** Rejects if `promise` has not settled within `ms`: a lock that never opens fails the test instead of hanging it. */
async function within<T> (ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`not settled within ${ms} ms`)) }, ms) })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Counts how many works run at once, and the most that ever did. */
function overlapMeter (): { enter: () => void, leave: () => void, readonly max: number, readonly runs: number } {
  let active = 0
  let max = 0
  let runs = 0
  return {
    enter: () => { active++; runs++; max = Math.max(max, active) },
    leave: () => { active-- },
    get max () { return max },
    get runs () { return runs }
  }
}

/** Whether a silent host can be shown: packets dropped on loopback (root and iptables; required under CI). */
const silentHosts = requireTool('iptables', canDropPackets(), 'a lock holder whose host went silent (as root)')

for (const factory of databaseFactories()) {
  describe.skipIf(!factory.available)(`shared state on ${factory.name}`, () => {
    let db: Database
    let url: string
    let dispose: () => Promise<void>

    beforeEach(async () => {
      ({ db, url, dispose } = await factory.open())
    })
    afterEach(async () => { await dispose() })

    describe('PgPinStore', () => {
      let pins: PgPinStore
      beforeEach(async () => {
        await db.migrate()
        pins = new PgPinStore(db.knex)
      })

      it('stores and lists a CIDv0 pin as its base32 CIDv1, and finds it by either', async () => {
        await pins.add(V0)
        expect(await db.knex('ipfs_pins').pluck('cid')).toEqual([V0_AS_V1])
        expect(await pins.has(V0)).toBe(true)
        expect(await pins.has(V0.toV1())).toBe(true)
        expect(await collect(pins.list())).toEqual([V0_AS_V1])
        await pins.remove(V0.toV1())
        expect(await pins.has(V0)).toBe(false)
        expect(await collect(pins.list())).toEqual([])
      })

      it('adds an existing pin and removes an absent one as no-ops', async () => {
        const cid = await rawCid('a')
        await pins.add(cid)
        const [before] = await db.knex('ipfs_pins').select('seq', 'pinned_at') as unknown[]
        await pins.add(cid)
        await Promise.all([pins.add(cid), pins.add(cid), pins.add(cid)])
        expect(await db.knex('ipfs_pins').select('seq', 'pinned_at')).toEqual([before])
        await pins.remove(await rawCid('never pinned'))
        await pins.remove(cid)
        await pins.remove(cid)
        expect(await pins.has(cid)).toBe(false)
      })

      it('tells a collector which pins came in after its mark', async () => {
        expect(await pins.maxSeq()).toBe(0n)
        expect(await pins.addedSince(0)).toEqual({ seq: 0n, cids: [] })
        const [a, b, c, d, e] = await Promise.all(['a', 'b', 'c', 'd', 'e'].map(rawCid)) as [CID, CID, CID, CID, CID]
        await pins.add(a)
        await pins.add(b)
        const mark = await pins.maxSeq()
        expect(mark).toBeGreaterThan(0n)
        expect(await pins.addedSince(mark)).toEqual({ seq: mark, cids: [] })

        await pins.add(c)
        await pins.add(d)
        await pins.add(a) // already pinned: not new
        await pins.remove(c) // gone again: nothing to protect
        await pins.add(e)
        const since = await pins.addedSince(mark)
        expect(since.cids.map(String)).toEqual([d, e].map(String))
        expect(since.seq).toBe(await pins.maxSeq())
        expect(await pins.addedSince(since.seq)).toEqual({ seq: since.seq, cids: [] })

        const first = await pins.addedSince(mark, 1)
        expect(first.cids.map(String)).toEqual([d.toString()])
        const rest = await pins.addedSince(first.seq, 1)
        expect(rest).toEqual({ seq: since.seq, cids: [e] })

        // Removed and pinned again: new since the latest mark.
        await pins.remove(a)
        await pins.add(a)
        expect((await pins.addedSince(since.seq)).cids.map(String)).toEqual([a.toString()])
      })

      it('numbers every pin added while a collector reads above the mark it was given', async () => {
        const cids = await Promise.all(Array.from({ length: 40 }, async (_, i) => rawCid(`concurrent ${i}`)))
        let mark = await pins.maxSeq()
        const seen: string[] = []
        const adding = Promise.all(cids.map(async (cid) => { await pins.add(cid) }))
        for (let round = 0; round < 20; round++) {
          const since = await pins.addedSince(mark)
          seen.push(...since.cids.map(String))
          mark = since.seq
        }
        await adding
        seen.push(...(await pins.addedSince(mark)).cids.map(String))
        expect(seen.sort()).toEqual(cids.map(String).sort())
      })

      it('lists more than one page of pins, a page at a time', async () => {
        const cids = await Promise.all(Array.from({ length: 2_345 }, async (_, i) => (await rawCid(`pin ${i}`)).toString()))
        for (let i = 0; i < cids.length; i += 500) {
          await db.knex('ipfs_pins').insert(cids.slice(i, i + 500).map((cid) => ({ cid })))
        }
        const selects: string[] = []
        const onQuery = (query: { sql: string }): void => { if (query.sql.startsWith('select')) selects.push(query.sql) }
        db.knex.on('query', onQuery)
        try {
          const listed = await collect(pins.list())
          expect(listed).toEqual(cids) // in the order they were added
        } finally {
          db.knex.off('query', onQuery)
        }
        expect(selects).toHaveLength(3)
        expect(selects.every((sql) => / limit /.test(sql))).toBe(true)
      })

      it('drops a lease\'s block keys with the lease', async () => {
        const [lease] = await db.knex('block_leases').insert({ instance: 'one' }).returning('id') as [{ id: string }]
        await db.knex('block_lease_keys').insert([{ lease_id: lease.id, block_key: 'k1' }, { lease_id: lease.id, block_key: 'k2' }])
        await db.knex('block_leases').where({ id: lease.id }).delete()
        expect(await db.knex('block_lease_keys').count({ n: '*' })).toEqual([{ n: '0' }])
      })
    })

    describe('PgAdvisoryLock', () => {
      const opened: PgAdvisoryLock[] = []
      const lock = (config: string | { connectionString: string, application_name: string } = url): PgAdvisoryLock => {
        const created = new PgAdvisoryLock(config)
        opened.push(created)
        return created
      }
      afterEach(async () => {
        await Promise.all(opened.splice(0).map(async (l) => { await l.close() }))
      })
      const advisoryLocksHeld = async (): Promise<number> => {
        const result = await db.knex.raw<{ rows: Array<{ n: number }> }>("select count(*)::int as n from pg_locks where locktype = 'advisory' and granted and database = (select oid from pg_database where datname = current_database())")
        return result.rows[0]?.n ?? -1
      }

      it('never runs two instances\' work on one key at once', async () => {
        const instances = [lock(), lock()]
        const meter = overlapMeter()
        const order: number[] = []
        await within(20_000, Promise.all(Array.from({ length: 12 }, async (_, i) => instances[i % 2]?.run('bafy-same', async () => {
          meter.enter()
          await sleep(15)
          order.push(i)
          meter.leave()
        }))))
        expect(meter.runs).toBe(12)
        expect(meter.max).toBe(1)
        expect(await advisoryLocksHeld()).toBe(0)
      })

      it('runs work on different keys at the same time, across instances and within one', async () => {
        const [one, two] = [lock(), lock()]
        const both = async (a: PgAdvisoryLock, b: PgAdvisoryLock, keys: [string, string]): Promise<void> => {
          let arrived = 0
          let openGate!: () => void
          const gate = new Promise<void>((resolve) => { openGate = resolve })
          const meet = async (): Promise<string> => {
            if (++arrived === 2) openGate()
            await gate
            return 'met'
          }
          expect(await within(10_000, Promise.all([a.run(keys[0], meet), b.run(keys[1], meet)]))).toEqual(['met', 'met'])
        }
        await both(one, two, ['key-a', 'key-b'])
        await both(one, one, ['key-c', 'key-d'])
      })

      it('releases the lock when the work throws', async () => {
        const [one, two] = [lock(), lock()]
        await expect(one.run('bafy-fails', async () => { await sleep(1); throw new Error('work failed') })).rejects.toThrow('work failed')
        expect(await advisoryLocksHeld()).toBe(0)
        expect(await within(5_000, two.run('bafy-fails', async () => { await sleep(1); return 'then ran' }))).toBe('then ran')
        expect(await within(5_000, one.run('bafy-fails', async () => { await sleep(1); return 'ran again' }))).toBe('ran again')
      })

      it('holds one connection for many local waiters on one key', async () => {
        const name = `heimdall-lock-${Math.random().toString(36).slice(2, 8)}`
        const local = lock({ connectionString: url, application_name: name })
        const meter = overlapMeter()
        let maxConnections = 0
        await within(30_000, Promise.all(Array.from({ length: 50 }, async () => local.run('bafy-popular', async () => {
          meter.enter()
          const result = await db.knex.raw<{ rows: Array<{ n: number }> }>('select count(*)::int as n from pg_stat_activity where application_name = ?', [name])
          maxConnections = Math.max(maxConnections, result.rows[0]?.n ?? Infinity)
          meter.leave()
        }))))
        expect(meter.runs).toBe(50)
        expect(meter.max).toBe(1)
        expect(maxConnections).toBe(1)
      })

      it('closes a lock connection that broke during the work, and locks again on a new one', async () => {
        const name = `heimdall-lock-${Math.random().toString(36).slice(2, 8)}`
        const [one, two] = [lock({ connectionString: url, application_name: name }), lock()]
        const answer = await one.run('bafy-broken', async () => {
          await db.knex.raw('select pg_terminate_backend(pid) from pg_stat_activity where application_name = ?', [name])
          await sleep(100)
          return 'finished'
        })
        expect(answer).toBe('finished')
        expect(await within(5_000, two.run('bafy-broken', async () => { await sleep(1); return 'other instance' }))).toBe('other instance')
        expect(await within(5_000, one.run('bafy-broken', async () => { await sleep(1); return 'same instance' }))).toBe('same instance')
        expect(await advisoryLocksHeld()).toBe(0)
      })

      it('gives up an unlock the server does not answer after unlockTimeoutMs: the work\'s answer returns, and the closed session ends the lock', async () => {
        const relay = await freezableRelay(url)
        try {
          const frozen = new PgAdvisoryLock(relay.url, { unlockTimeoutMs: 500 })
          opened.push(frozen)
          const started = Date.now()
          // It held the request in its finally for as long as the server did not answer.
          expect(await within(5_000, frozen.run('bafy-frozen', async () => { relay.freeze(); await sleep(1); return 'finished' }))).toBe('finished')
          expect(Date.now() - started).toBeGreaterThanOrEqual(500)
          expect(await within(5_000, lock().run('bafy-frozen', async () => { await sleep(1); return 'other instance' }))).toBe('other instance')
          expect(await advisoryLocksHeld()).toBe(0)
        } finally { await relay.close() }
      })

      // Over TCP only: PostgreSQL keeps no keepalive on a Unix socket (the embedded server), whose clients share its host.
      // At once: the server's last answer not yet acknowledged (a delayed ACK), so tcp_user_timeout decides; once idle,
      // with everything acknowledged, the keepalive probes do.
      // Only for the server over TCP (not declared for the embedded one, where it does not apply, rather than skipped).
      const overTcp = factory.name === 'PostgreSQL' ? it : undefined
      overTcp?.skipIf(!silentHosts).for([['at once', 0], ['once idle', 300]] as const)('ends the lock of an instance whose host went silent (%s) while its work ran, once the server gives up on its session, not when TCP\'s default does (hours)', async ([, idleMs]) => {
        const silent = new PgAdvisoryLock(url, { unlockTimeoutMs: 500, deadClientCheck: { idleSeconds: 1, intervalSeconds: 1, count: 2 } })
        opened.push(silent)
        let finish!: () => void
        const finished = new Promise<void>((resolve) => { finish = resolve })
        let entered!: () => void
        const inside = new Promise<void>((resolve) => { entered = resolve })
        const holding = silent.run('bafy-silent', async () => { entered(); await finished; return 'finished' })
        await within(5_000, inside)
        const holder = await db.knex.raw<{ rows: Array<{ port: number }> }>("select a.client_port as port from pg_locks l join pg_stat_activity a on a.pid = l.pid where l.locktype = 'advisory' and l.granted and l.database = (select oid from pg_database where datname = current_database())")
        expect(holder.rows).toHaveLength(1)
        await sleep(idleMs)
        const restore = await dropBetween(Number(new URL(url).port), holder.rows[0]?.port ?? 0)
        try {
          // Idle 1 s, then two probes 1 s apart unanswered: the session ends about 3 s after its last word.
          const started = Date.now()
          expect(await within(15_000, lock().run('bafy-silent', async () => { await sleep(1); return 'other instance' }))).toBe('other instance')
          expect(Date.now() - started).toBeLessThan(15_000)
        } finally {
          await restore()
          finish()
        }
        // The silent instance's work still answers; its unlock finds the session gone and closes the connection.
        expect(await within(5_000, holding)).toBe('finished')
        expect(await advisoryLocksHeld()).toBe(0)
      })
    })

    if (factory.name === 'PostgreSQL') describe('sessions over TCP', () => {
      it('have the server end one whose client went silent within half a minute (dead-client.ts), not TCP\'s default of hours', async () => {
        const settings = await db.knex.raw<{ rows: Array<{ name: string, setting: string }> }>("select name, setting from pg_settings where name like 'tcp_keepalives_%' or name = 'tcp_user_timeout'")
        expect(Object.fromEntries(settings.rows.map((row) => [row.name, row.setting]))).toEqual({ tcp_keepalives_count: '3', tcp_keepalives_idle: '10', tcp_keepalives_interval: '5', tcp_user_timeout: '25000' })
      })

      it('take DATABASE_DEAD_CLIENT_SECONDS, and with 0 the server\'s own settings', async () => {
        const settingsOf = async (deadClientSeconds: number): Promise<Record<string, string>> => {
          const opened = openPostgres(url, { deadClientSeconds })
          try {
            const settings = await opened.knex.raw<{ rows: Array<{ name: string, setting: string }> }>("select name, setting from pg_settings where name like 'tcp_keepalives_%' or name = 'tcp_user_timeout'")
            return Object.fromEntries(settings.rows.map((row) => [row.name, row.setting]))
          } finally {
            await opened.close()
          }
        }
        expect(await settingsOf(60)).toEqual({ tcp_keepalives_count: '3', tcp_keepalives_idle: '24', tcp_keepalives_interval: '12', tcp_user_timeout: '60000' })
        expect((await settingsOf(0)).tcp_user_timeout).toBe('0')
      })
    })

    describe('a server that stops answering (DATABASE_QUERY_TIMEOUT_SECONDS)', () => {
      it('fails a query it does not answer after the deadline, lends that connection no more, and bounds making a new one', async () => {
        const relay = await freezableRelay(url)
        const bounded = openPostgres(relay.url, { queryTimeoutSeconds: 1, log: { warn: () => {}, error: () => {} } })
        try {
          await bounded.knex.transaction(async (trx) => { await trx.raw('select 1') })
          relay.freeze()
          const started = Date.now()
          await expect(within(5_000, bounded.knex.raw('select 2'))).rejects.toMatchObject({ name: 'QueryDeadlineError' })
          expect(Date.now() - started).toBeGreaterThanOrEqual(1000)
          // The next query needs a new connection, which the frozen server never makes either.
          await expect(within(5_000, bounded.knex.raw('select 3'))).rejects.toThrow(/timeout expired/)
        } finally {
          await relay.close()
          await bounded.close()
        }
        // The session closed with the relay: nothing of it is left running on the server.
        await within(5_000, (async () => {
          for (;;) {
            const { rows } = await db.knex.raw<{ rows: Array<{ n: number }> }>("select count(*)::int as n from pg_stat_activity where query in ('select 2', 'select 3')")
            if (rows[0]?.n === 0) return
            await sleep(50)
          }
        })())
      })
    })

    describe('the query deadline\'s exceptions', () => {
      const quiet = { warn: () => {}, error: () => {} }

      it('bounds a wait for a lock marked LOCK_WAIT (other work holds it as long as it takes) only at LOCK_WAIT_FACTOR times the deadline', async () => {
        const bounded = openPostgres(url, { queryTimeoutSeconds: 1, log: quiet })
        let release!: () => void
        const released = new Promise<void>((resolve) => { release = resolve })
        let held!: () => void
        const holds = new Promise<void>((resolve) => { held = resolve })
        const holding = db.knex.transaction(async (trx) => { await trx.raw('select pg_advisory_xact_lock(7, 7)'); held(); await released })
        try {
          // Once it holds the lock, not after a guess at how long that takes (a busy machine took more than 100 ms).
          await within(10_000, holds)
          const waited = bounded.knex.transaction(async (trx) => { await trx.raw('select pg_advisory_xact_lock(7, 7)').options(LOCK_WAIT); return 'got it' })
          await expect(bounded.knex.transaction(async (trx) => { await trx.raw('select pg_advisory_xact_lock(7, 7)') })).rejects.toThrow()
          release()
          expect(await within(5_000, waited)).toBe('got it')
        } finally {
          release()
          await holding
          await bounded.close()
        }
      })

      it('counts no time this process was busy itself: an answer that came meanwhile is read, not discarded as late', async () => {
        const bounded = openPostgres(url, { queryTimeoutSeconds: 1, log: quiet })
        try {
          await bounded.knex.raw('select 1')
          // Held just after the query is sent, before its answer can have been read (the loop's poll phase is past).
          bounded.knex.once('query', () => {
            setImmediate(() => {
              const busyUntil = Date.now() + 1300
              while (Date.now() < busyUntil) { /* the event loop held past the deadline */ }
            })
          })
          const answered = await bounded.knex.raw<{ rows: Array<{ one: number }> }>('select 1 as one')
          expect(answered.rows).toEqual([{ one: 1 }])
        } finally { await bounded.close() }
      })
    })

    describe('migrations at start', () => {
      it('succeed when three instances migrate one empty database at once', async () => {
        const instances = [openPostgres(url), openPostgres(url), openPostgres(url)]
        try {
          const results = await Promise.allSettled(instances.map(async (instance) => { await instance.migrate() }))
          expect(results.map((result) => result.status === 'rejected' ? String(result.reason) : 'ok')).toEqual(['ok', 'ok', 'ok'])
        } finally {
          await Promise.all(instances.map(async (instance) => { await instance.close() }))
        }
        const source = new DirectoryMigrationSource()
        const [, pending] = await db.knex.migrate.list({ migrationSource: source }) as [unknown[], unknown[]]
        expect(pending).toEqual([])
        expect(await db.knex('knex_migrations').count({ n: '*' })).toEqual([{ n: String((await source.getMigrations()).length) }])
        for (const table of ['identities', 'uploads', 'resumable_uploads', 'ipfs_pins', 'block_leases', 'block_lease_keys']) {
          expect(await db.knex.schema.hasTable(table)).toBe(true)
        }
      })

      it('free knex\'s lock row left set by a process killed while migrating', async () => {
        await db.migrate()
        await db.knex('knex_migrations_lock').update({ is_locked: 1 })
        await db.migrate()
        expect(await db.knex('knex_migrations_lock').pluck('is_locked')).toEqual([0])
        expect(await db.knex.schema.hasTable('ipfs_pins')).toBe(true)
      })
    })
  })
}
