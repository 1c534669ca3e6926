import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { failure } from '../../src/errors.js'
import type { StoredPage } from '../../src/stores/page-store.js'
import { RedisPageStore, type RedisPageStoreOptions } from '../../src/stores/redis-page-store.js'
import { connect, NEEDS_REDIS, NEEDS_REDIS_SERVER, TEST_REDIS_URL, next, ownRedis, testPrefix } from '../helpers/redis.js'
import { STALE_MS, storedPage, T0, TTL_MS } from '../contracts/page-store.js'
import { manualClock, readingClock } from '../helpers/clock.js'

/** Two replicas' stores on one Redis and one clock. */
async function replicas(t: Test, options: Partial<RedisPageStoreOptions> & { url?: string } = {}) {
  const url = options.url ?? TEST_REDIS_URL
  const keyPrefix = options.url === undefined ? testPrefix(t) : 'gw:'
  const clock = { now: T0 }
  const writeErrors: unknown[] = []
  const store = async () => {
    const s = new RedisPageStore({
      connection: await connect(t, url, 'cache'),
      keyPrefix,
      memoryMaxBytes: 1024 * 1024,
      redisMaxBytes: 1024 * 1024,
      staleMaxMs: STALE_MS,
      lockTtlMs: 5000,
      waitMs: 5000,
      pollMs: 50,
      errorTtlMs: 1000,
      clock: readingClock(() => clock.now),
      onWriteError: (error) => writeErrors.push(error),
      ...options
    })
    t.teardown(() => s.close())
    return s
  }
  return { a: await store(), b: await store(), clock, keyPrefix, writeErrors }
}

function counting(load: () => Promise<StoredPage>) {
  const counted = { calls: 0, load: () => (counted.calls++, load()) }
  return counted
}

t.test('a page loaded through one replica is a hit on the other, byte for byte', { skip: NEEDS_REDIS }, async (t) => {
  const { a, b } = await replicas(t)
  const loader = counting(async () => storedPage(T0, 'one'))
  t.equal((await a.fetch('k', loader.load)).outcome, 'miss')
  const onB = await b.fetch('k', loader.load)
  t.equal(onB.outcome, 'hit')
  t.same(onB.page, storedPage(T0, 'one'))
  t.equal(loader.calls, 1)
  t.same(b.peekFresh('k'), storedPage(T0, 'one'), 'and now in B memory')
  t.equal(b.peekFresh('k')?.body.buffer.byteLength, onB.page.body.length, "in memory of its own, not a view into Redis's reply")
})

t.test('concurrent fetches spread over two replicas load once; every other is coalesced', { skip: NEEDS_REDIS }, async (t) => {
  const { a, b } = await replicas(t)
  let release = () => {}
  const gate = new Promise<void>((resolve) => (release = resolve))
  const loader = counting(async () => {
    await gate
    return storedPage(T0, 'one')
  })
  const pending = Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).fetch('k', loader.load))
  setTimeout(release, 100)
  const results = await Promise.all(pending)
  t.equal(loader.calls, 1)
  t.equal(results.filter((r) => r.outcome === 'miss').length, 1)
  t.equal(results.filter((r) => r.outcome === 'coalesced').length, 49)
})

t.test("a failed load answers the other replica's waiters with its error: they do not load (and spend quota) themselves", { skip: NEEDS_REDIS }, async (t) => {
  const { a, b } = await replicas(t)
  const refused = failure('GW_RATE_LIMITED', 'TikTok says slow down', { retryAfterSeconds: 7, upstreamCode: 'rate_limit_exceeded' })
  let release = () => {}
  const gate = new Promise<void>((resolve) => (release = resolve))
  let started = () => {}
  const loading = new Promise<void>((resolve) => (started = resolve))
  const failing = counting(async () => {
    started()
    await gate
    throw refused
  })
  const onA = a.fetch('k', failing.load)
  await loading
  const fine = counting(async () => storedPage(T0, 'one'))
  const onB = b.fetch('k', fine.load)
  release()
  await t.rejects(onA, refused)
  await t.rejects(onB, { code: 'GW_RATE_LIMITED', message: 'TikTok says slow down', retryAfterSeconds: 7, upstreamCode: 'rate_limit_exceeded', statusCode: 429 })
  t.equal(fine.calls, 0)
})

t.test('an expired page in Redis is served stale by a replica that never held it when its reload fails', { skip: NEEDS_REDIS }, async (t) => {
  const { a, b, clock } = await replicas(t)
  await a.fetch('k', async () => storedPage(T0, 'one'))
  clock.now += TTL_MS + 1
  const down = failure('GW_UPSTREAM_UNAVAILABLE', 'down')
  const result = await b.fetch('k', () => Promise.reject(down))
  t.equal(result.outcome, 'stale')
  t.equal(result.error, down)
  t.same(result.page, storedPage(T0, 'one'))
})

t.test('pages in Redis stay within their byte budget, dropping the soonest to expire, under a versioned key', { skip: NEEDS_REDIS }, async (t) => {
  const { a, keyPrefix, writeErrors } = await replicas(t, { redisMaxBytes: 2000 })
  const big = (text: string) => async () => ({ ...storedPage(T0, text.padEnd(300, '.')), expiresAt: T0 + Number(text.slice(1)) * 1000 })
  for (let i = 1; i <= 12; i++) await a.fetch(`p${i}`, big(`p${i}`))
  const redis = new Redis(TEST_REDIS_URL)
  t.teardown(() => redis.disconnect())
  t.ok(Number(await redis.get(`${keyPrefix}page:v1:bytes`)) <= 2000)
  const held = (await redis.keys(`${keyPrefix}page:v1:p*`)).map((key) => key.slice(`${keyPrefix}page:v1:`.length)).sort((x, y) => Number(x.slice(1)) - Number(y.slice(1)))
  t.ok(held.length > 0 && held.length < 12)
  t.equal(held.at(-1), 'p12', 'the newest, latest to expire, is kept')
  t.notOk(held.includes('p1'), 'the soonest to expire was dropped')
  t.same(writeErrors, [])
})

t.test('with Redis killed, a replica serves its memory hits and loads misses itself, without waiting; with Redis back, sharing resumes', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const redis = await ownRedis(t)
  const { a, b } = await replicas(t, { url: redis.url })
  await a.fetch('hot', async () => storedPage(T0, 'hot'))
  await redis.kill()
  t.equal((await a.fetch('hot', () => Promise.reject(new Error('no load for a hit')))).outcome, 'hit')
  const cold = counting(async () => storedPage(T0, 'cold'))
  const results = await Promise.all([a.fetch('cold', cold.load), b.fetch('cold', cold.load)])
  t.same(results.map((r) => r.outcome), ['miss', 'miss'], 'each replica loads alone')
  await redis.start()
  // Both replicas' connections reconnect; wait until a write lands, then B reads it.
  const probe = new Redis(redis.url)
  t.teardown(() => probe.disconnect())
  await next(probe, 'ready')
  let shared
  for (let attempt = 0; attempt < 100 && shared === undefined; attempt++) {
    await a.fetch(`after${attempt}`, async () => storedPage(T0, 'after'))
    if ((await b.fetch(`after${attempt}`, () => Promise.reject(new Error('should be shared'))).catch(() => undefined))?.outcome === 'hit') shared = attempt
    else await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.not(shared, undefined, 'a page loaded on A is a hit on B again')
})

/** Short lock times, so that a test of the lock's lapse takes well under a second. */
const LOCKS = { lockTtlMs: 450, pollMs: 50, waitMs: 2500 }

t.test('an orphan lock (its SET ran after the client gave up) lapses within its TTL: the other replica loads the page long before its deadline', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const redis = await ownRedis(t)
  const { b, keyPrefix } = await replicas(t, { url: redis.url, ...LOCKS })
  const probe = new Redis(redis.url)
  t.teardown(() => probe.disconnect())
  await probe.set(`${keyPrefix}page:v1:lock:k`, 'a-token-nobody-holds', 'PX', LOCKS.lockTtlMs)
  const started = performance.now()
  const result = await b.fetch('k', async () => storedPage(T0, 'one'))
  t.equal(result.outcome, 'miss')
  t.ok(performance.now() - started < LOCKS.waitMs / 2, 'taken over well before the deadline')
})

t.test('a load that outlasts the lock TTL keeps its lock by heartbeats: the other replica waits for it instead of loading a second time', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const redis = await ownRedis(t)
  const { a, b } = await replicas(t, { url: redis.url, ...LOCKS })
  let started = () => {}
  const loading = new Promise<void>((resolve) => (started = resolve))
  const loader = counting(async () => {
    started()
    await new Promise((resolve) => setTimeout(resolve, 3 * LOCKS.lockTtlMs))
    return storedPage(T0, 'one')
  })
  const onA = a.fetch('k', loader.load)
  await loading
  const onB = b.fetch('k', loader.load)
  t.same((await Promise.all([onA, onB])).map((r) => r.outcome), ['miss', 'coalesced'])
  t.equal(loader.calls, 1)
})

/** The scripts Redis has run (the heartbeat is one; nothing else runs one while no page is written). */
async function scriptCalls(redis: Redis): Promise<number> {
  const stats = await redis.info('commandstats')
  return [...stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((sum, [, calls]) => sum + Number(calls), 0)
}

t.test('the lock heartbeat beats only while the load runs: it stops when the load succeeds, fails, or the store closes', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const redis = await ownRedis(t)
  const clock = manualClock()
  const { a, keyPrefix } = await replicas(t, { url: redis.url, ...LOCKS, clock })
  const probe = new Redis(redis.url)
  t.teardown(() => probe.disconnect())
  const beats = () => clock.advance(LOCKS.lockTtlMs)
  const quiet = async (when: string) => {
    const before = await scriptCalls(probe)
    await beats()
    t.equal(await scriptCalls(probe), before, `no heartbeat after ${when}`)
  }

  const before = await scriptCalls(probe)
  await a.fetch('ok', async () => (await beats(), storedPage(T0, 'one')))
  t.ok((await scriptCalls(probe)) >= before + 2, 'beats during the load (and one page write)')
  await quiet('a load that succeeded')
  await t.rejects(a.fetch('failed', async () => (await beats(), Promise.reject(failure('GW_UPSTREAM_UNAVAILABLE', 'down')))))
  await quiet('a load that failed')

  let release = () => {}
  const gate = new Promise<void>((resolve) => (release = resolve))
  const pending = a.fetch('closed', async () => (await gate, storedPage(T0, 'late'))).catch(() => undefined)
  await beats()
  await a.close()
  await quiet('the store closed')
  // Redis's own TTL runs in real time.
  await new Promise((resolve) => setTimeout(resolve, LOCKS.lockTtlMs))
  t.equal(await probe.exists(`${keyPrefix}page:v1:lock:closed`), 0, 'and the lock of the load cut short lapsed')
  release()
  await pending
})
