import type { Test } from 'tap'
import type { Account } from '../../src/schemas/followers.js'
import type { JobStore, Lease, NewJob } from '../../src/stores/job-store.js'

const DAY = 86_400_000
export const RETENTION = 7 * DAY
export const T0 = Date.parse('2020-02-28T12:00:00Z')

/** A fresh, empty store on a clock the test moves; teardown is the factory's business. */
export type StoreFactory = (t: Test, now: () => number) => Promise<JobStore>

export const accounts = (from: number, count: number): Account[] =>
  Array.from({ length: count }, (_, i) => ({ username: `user${from + i}`, display_name: `User ${from + i}` }))

export const lease = (holder: string, now: number, seconds = 60): Lease => ({ holder, now, until: now + seconds * 1000 })

export const newJob = (id: string, overrides: Partial<NewJob> = {}): NewJob => ({ id, owner: 'alice', username: 'big', relation: 'followers', createdAt: T0, ...overrides })

export async function lines(store: JobStore, id: string): Promise<string[]> {
  const all: string[] = []
  for await (const batch of store.records(id)) all.push(...batch)
  return all
}

/** The behaviour every JobStore must have; run against each implementation. */
export function jobStoreContract(t: Test, factory: StoreFactory): void {
  let now = T0
  const setup = async (t: Test) => {
    now = T0
    return factory(t, () => now)
  }

  t.test('a new job is queued, due at once, and listed newest first for its owner and for everyone', async (t) => {
    const store = await setup(t)
    t.match(await store.create(newJob('a', { maxRecords: 250 })), { id: 'a', state: 'queued', records: 0, pages: 0, maxRecords: 250, cursor: undefined })
    await store.create(newJob('b', { owner: 'bob', createdAt: T0 + 1 }))
    t.match(await store.get('a'), { id: 'a', owner: 'alice', username: 'big', relation: 'followers', state: 'queued', createdAt: T0, updatedAt: T0 })
    t.equal(await store.get('nope'), undefined)
    t.same((await store.list()).map((job) => job.id), ['b', 'a'])
    t.same((await store.list('alice')).map((job) => job.id), ['a'])
    t.same((await store.list('carol')), [])
    t.same((await store.due(T0 + 1)).sort(), ['a', 'b'])
  })

  t.test('a claimed job runs under one lease: no other holder takes it until the lease runs out', async (t) => {
    const store = await setup(t)
    await store.create(newJob('a'))
    t.match(await store.claim('a', lease('r1', now)), { state: 'running' })
    t.equal(await store.claim('a', lease('r2', now)), undefined, 'r2 is refused while r1 holds it')
    t.same(await store.due(now), [], 'not due while the lease runs')
    t.ok(await store.renew('a', lease('r1', now + 30_000)), 'r1 renews')
    t.same(await store.due(now + 60_001), [], 'the renewal pushed the lease on')
    t.same(await store.due(now + 90_000), ['a'], 'due again when the lease has run out')
    t.match(await store.claim('a', lease('r2', now + 90_001)), { state: 'running' }, 'r2 takes it over')
    t.notOk(await store.renew('a', lease('r1', now + 90_002)), 'r1 has lost it')
    t.equal(await store.commit('a', lease('r1', now + 90_002), { accounts: accounts(0, 100), cursor: 5, last: false }), undefined, "r1's page is refused")
    t.match(await store.get('a'), { records: 0, pages: 0 })
  })

  t.test('a commit appends each username once across pages and moves the checkpoint with it', async (t) => {
    const store = await setup(t)
    await store.create(newJob('a'))
    await store.claim('a', lease('r1', now))
    t.match(await store.commit('a', lease('r1', now + 1), { accounts: accounts(0, 100), cursor: 900, last: false }), { records: 100, pages: 1, cursor: 900, state: 'running' })
    // A page boundary that repeats the last 10 accounts of the page before.
    t.match(await store.commit('a', lease('r1', now + 2), { accounts: accounts(90, 100), cursor: 800, last: false }), { records: 190, pages: 2, cursor: 800, updatedAt: now + 2 })
    const recorded = await lines(store, 'a')
    t.equal(recorded.length, 190)
    t.equal(new Set(recorded).size, 190)
    t.same(JSON.parse(recorded[0] ?? ''), { username: 'user0', display_name: 'User 0' })
    t.same(JSON.parse(recorded[189] ?? ''), { username: 'user189', display_name: 'User 189' })
  })

  t.test('the last page, or max_records, finishes the job: done, no longer due, records kept', async (t) => {
    const store = await setup(t)
    await store.create(newJob('a'))
    await store.create(newJob('b', { maxRecords: 150 }))
    await store.claim('a', lease('r1', now))
    await store.claim('b', lease('r1', now))
    t.match(await store.commit('a', lease('r1', now), { accounts: accounts(0, 40), cursor: 1, last: true }), { state: 'done', records: 40, pages: 1 })
    await store.commit('b', lease('r1', now), { accounts: accounts(0, 100), cursor: 2, last: false })
    t.match(await store.commit('b', lease('r1', now), { accounts: accounts(100, 100), cursor: 3, last: false }), { state: 'done', records: 150, pages: 2 })
    t.equal((await lines(store, 'b')).length, 150)
    t.same(await store.due(now + 365 * DAY), [])
    t.equal(await store.claim('a', lease('r2', now)), undefined, 'a finished job is not run again')
    t.notOk(await store.renew('a', lease('r1', now)))
  })

  t.test('a pause frees the lease until resumes_at; a retry counts failures; a failure ends the job', async (t) => {
    const store = await setup(t)
    const midnight = Date.parse('2020-02-29T00:00:00Z')
    await store.create(newJob('a'))
    await store.claim('a', lease('r1', now))
    t.ok(await store.setBack('a', lease('r1', now), { state: 'paused', resumesAt: midnight, error: 'budget spent' }))
    t.match(await store.get('a'), { state: 'paused', resumesAt: midnight, error: 'budget spent' })
    t.same(await store.due(midnight - 1), [])
    t.same(await store.due(midnight), ['a'])
    t.match(await store.claim('a', lease('r2', midnight)), { state: 'running', resumesAt: undefined }, 'any holder may claim a paused job')
    t.ok(await store.setBack('a', lease('r2', midnight), { state: 'queued', retryAt: midnight + 60_000, error: 'TikTok failed' }))
    t.match(await store.get('a'), { state: 'queued', failures: 1, error: 'TikTok failed' })
    t.same(await store.due(midnight + 59_999), [])
    await store.claim('a', lease('r2', midnight + 60_000))
    t.notOk(await store.setBack('a', lease('r1', midnight + 60_000), { state: 'failed', error: 'x' }), 'only the holder sets a job back')
    await store.commit('a', lease('r2', midnight + 60_000), { accounts: accounts(0, 1), cursor: 1, last: false })
    t.match(await store.get('a'), { failures: 0, error: undefined }, 'a page that came in clears the failures')
    t.ok(await store.setBack('a', lease('r2', midnight + 60_001), { state: 'failed', error: 'TikTok has no user "big"' }))
    t.match(await store.get('a'), { state: 'failed', error: 'TikTok has no user "big"', records: 1 })
    t.same(await store.due(midnight + DAY), [])
  })

  t.test('a released job is queued and any replica may take it at once', async (t) => {
    const store = await setup(t)
    await store.create(newJob('a'))
    await store.claim('a', lease('r1', now))
    await store.release('a', lease('r1', now + 5))
    t.match(await store.get('a'), { state: 'queued' })
    t.same(await store.due(now + 5), ['a'])
    t.match(await store.claim('a', lease('r2', now + 5)), { state: 'running' })
    await store.release('a', lease('r1', now + 6))
    t.match(await store.get('a'), { state: 'running' }, 'a release by a former holder changes nothing')
  })

  t.test('cancel ends an unfinished job, keeps its records and fences off its runner; a finished job stays as it was', async (t) => {
    const store = await setup(t)
    await store.create(newJob('a'))
    await store.claim('a', lease('r1', now))
    await store.commit('a', lease('r1', now), { accounts: accounts(0, 100), cursor: 1, last: false })
    t.match(await store.cancel('a', now + 1), { state: 'cancelled', records: 100, updatedAt: now + 1 })
    t.notOk(await store.renew('a', lease('r1', now + 2)))
    t.equal(await store.commit('a', lease('r1', now + 2), { accounts: accounts(100, 100), cursor: 2, last: false }), undefined)
    t.equal((await lines(store, 'a')).length, 100)
    t.same(await store.due(now + DAY), [])
    t.match(await store.cancel('a', now + 3), { state: 'cancelled', updatedAt: now + 1 })
    t.equal(await store.cancel('nope', now), undefined)
  })

  t.test('records stream back in the order fetched, in batches, however many there are', async (t) => {
    const store = await setup(t)
    await store.create(newJob('a'))
    await store.claim('a', lease('r1', now))
    for (let page = 0; page < 25; page++) await store.commit('a', lease('r1', now), { accounts: accounts(page * 100, 100), cursor: page, last: false })
    const recorded = (await lines(store, 'a')).map((line) => JSON.parse(line).username)
    t.same(recorded, accounts(0, 2500).map((account) => account.username))
    t.same(await lines(store, 'nope'), [])
  })

  t.test('jobs are counted by state', async (t) => {
    const store = await setup(t)
    await store.create(newJob('a'))
    await store.create(newJob('b'))
    await store.create(newJob('c'))
    await store.claim('b', lease('r1', now))
    await store.cancel('c', now)
    t.same(await store.countByState(), { queued: 1, running: 1, paused: 0, done: 0, failed: 0, cancelled: 1 })
  })

  t.test('a job the store lost is written back as failed with its reason and no records, listed for its owner, and expires after the retention', async (t) => {
    const store = await setup(t)
    const job = { ...(await store.create(newJob('a'))), state: 'running' as const, records: 300, pages: 3 }
    await store.claim('a', lease('r1', now))
    await store.commit('a', lease('r1', now), { accounts: accounts(0, 10), cursor: 1, last: false })
    // As a flushed Redis would leave it: the runner writes back what it last knew.
    await store.restoreFailed({ ...job, id: 'lost' }, now + 1000, 'it vanished')
    t.match(await store.get('lost'), { id: 'lost', owner: 'alice', state: 'failed', error: 'it vanished', records: 0, pages: 0, updatedAt: now + 1000 })
    t.same((await store.list('alice')).map((listed) => listed.id).sort(), ['a', 'lost'])
    t.same(await lines(store, 'lost'), [])
    t.same(await store.due(Number.POSITIVE_INFINITY), ['a'], 'a failed job is not due')
  })
}
