import pino from 'pino'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { RedisConnection } from '../../src/stores/redis.js'
import { RedisCounterStore } from '../../src/stores/redis-counter-store.js'
import { connect, NEEDS_REDIS_SERVER, next, ownRedis } from '../helpers/redis.js'

const NOW = Date.parse('2020-02-28T12:00:00Z')
const TOMORROW = Date.parse('2020-02-29T00:00:00Z')
const TEAM = [{ key: 'team', limit: 100 }]

t.test('while Redis is down a replica spends only its share of what was left, and writes all its calls of the day to the shared counter when Redis is back', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const redis = await ownRedis(t)
  const connection = await connect(t, redis.url)
  const store = new RedisCounterStore({ connection, keyPrefix: 'gw:', outageShare: 0.1, now: () => NOW })
  for (let i = 0; i < 10; i++) t.equal(await store.reserve(TEAM, TOMORROW), -1)

  const closed = next(connection.client, 'close')
  await redis.kill()
  await closed
  const during = await Promise.allSettled(Array.from({ length: 12 }, () => store.reserve(TEAM, TOMORROW)))
  t.equal(during.filter((result) => result.status === 'fulfilled' && result.value === -1).length, 9, 'a tenth of the 90 left')
  t.match(
    during.filter((result) => result.status === 'rejected').map(({ reason }) => reason),
    Array(3).fill({ code: 'GW_SHARED_STATE_UNAVAILABLE', statusCode: 503 }),
    'the rest are refused as the shared state being unavailable, not as the day being spent'
  )
  t.same(await store.read(['team']), [19], 'the report counts the outage calls')

  // The restarted Redis is empty (no persistence here): the replica writes its tally of the day again.
  const ready = next(connection.client, 'ready')
  await redis.start()
  await ready
  t.same(await store.read(['team']), [19])
  const direct = new Redis(redis.url)
  t.teardown(() => direct.disconnect())
  t.equal(await direct.get('gw:team'), '19')
  t.ok((await direct.pttl('gw:team')) > 0, 'the counter still ends with the day')
})

t.test('quota scripts run when Redis is out of memory under noeviction, where ordinary writes are refused', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const redis = await ownRedis(t, ['--maxmemory-policy', 'noeviction'])
  const direct = new Redis(redis.url)
  t.teardown(() => direct.disconnect())
  // Any limit below what an empty Redis uses makes it full (this is the test's own server).
  await direct.config('SET', 'maxmemory', '1')
  await t.rejects(direct.set('ordinary', '1'), /OOM/, 'Redis is full')
  await t.rejects(direct.eval("#!lua\nreturn redis.call('INCR', KEYS[1])", 1, 'script'), /OOM/, 'a script without allow-oom is refused')

  const connection = await connect(t, redis.url)
  const store = new RedisCounterStore({ connection, keyPrefix: 'gw:', outageShare: 0, now: () => NOW })
  t.equal(await store.reserve(TEAM, TOMORROW), -1)
  await store.raise('team', 5, TOMORROW)
  t.equal(await store.reserve(TEAM, TOMORROW), -1)
  t.equal(await direct.get('gw:team'), '6', 'counted in Redis, not in a local fallback (its share is 0)')
})

/** A connection whose commands time out after `commandTimeoutMs`, so that a paused Redis is a stall within the test's time. */
async function stallable(t: Test, url: string, commandTimeoutMs: number): Promise<RedisConnection> {
  const connection = new RedisConnection({ url, role: 'state', connectTimeoutMs: 1000, commandTimeoutMs, logger: pino({ level: 'silent' }) })
  t.teardown(() => connection.close())
  await connection.ready(2000)
  return connection
}

/** How many reservations were made, of `count` concurrent ones (a refusal may also be thrown). */
async function reserved(store: RedisCounterStore, limits: typeof TEAM, count: number): Promise<number> {
  const results = await Promise.allSettled(Array.from({ length: count }, () => store.reserve(limits, TOMORROW)))
  return results.filter((result) => result.status === 'fulfilled' && result.value === -1).length
}

t.test('a stalled Redis (connections open, commands timing out): each replica spends only its share of what was left, and once Redis answers the day is counted once, never less than the calls made', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const redis = await ownRedis(t)
  const budget = [{ key: 'team', limit: 1000 }]
  const replicas = await Promise.all(
    [0, 1].map(async () => new RedisCounterStore({ connection: await stallable(t, redis.url, 100), keyPrefix: 'gw:', outageShare: 0.1, now: () => NOW }))
  )
  const [a, b] = replicas as [RedisCounterStore, RedisCounterStore]
  let calls = (await reserved(a, budget, 10)) + (await reserved(b, budget, 10))
  t.equal(calls, 20)
  for (const store of replicas) t.same(await store.read(['team']), [20], 'each replica knows what is left')

  redis.pause()
  t.teardown(() => redis.resume())
  // Waves of requests, with reads between them that wait for a sync to time out: the stall lasts, the share does not grow.
  const during: number[] = []
  for (let wave = 0; wave < 4; wave++) {
    during.push(...(await Promise.all(replicas.map((store) => reserved(store, budget, 60)))))
    await Promise.all(replicas.map((store) => store.read(['team'])))
  }
  const outageCalls = during.reduce((sum, n) => sum + n, 0)
  t.ok(outageCalls <= 2 * 98, `two replicas spend at most 2 x 10% of the 980 left (${outageCalls} calls)`)
  t.ok(outageCalls >= 2 * 90, `and about that much (${outageCalls} calls)`)
  calls += outageCalls

  redis.resume()
  // The scripts that timed out run now; then each replica's next sync (a read waits for it) writes its tally.
  await b.read(['team'])
  const [shared = 0] = await a.read(['team'])
  t.same(await b.read(['team']), [shared], 'both replicas read the one count')
  t.ok(shared >= calls, `never counted below the calls made (${shared} for ${calls})`)
  t.ok(shared <= calls * 1.05, `counted within 5% (${shared} for ${calls})`)
  t.equal(await a.reserve(budget, TOMORROW), -1)
  t.same(await b.read(['team']), [shared + 1], 'and counting goes on in Redis')
})

t.test('a Redis restarted empty gets the day back from the replicas: what each spent is written again, and the budget is not spent twice', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const redis = await ownRedis(t)
  const budget = [{ key: 'team', limit: 50 }]
  const connections = await Promise.all([connect(t, redis.url), connect(t, redis.url)])
  const [a, b] = connections.map((connection) => new RedisCounterStore({ connection, keyPrefix: 'gw:', outageShare: 0.1, now: () => NOW })) as [
    RedisCounterStore,
    RedisCounterStore
  ]
  let calls = (await reserved(a, budget, 15)) + (await reserved(b, budget, 15))
  t.equal(calls, 30)

  const closed = connections.map(({ client }) => next(client, 'close'))
  await redis.kill()
  await Promise.all(closed)
  const ready = connections.map(({ client }) => next(client, 'ready'))
  await redis.start()
  await Promise.all(ready)
  // Each replica writes its tallies again on reconnecting, and with every script it sends (a read too):
  // ioredis re-sends a script the empty Redis does not know yet, so which write lands first is not fixed.
  await a.read(['team'])
  t.same(await b.read(['team']), [30], 'each replica wrote its tally again')
  t.same(await a.read(['team']), [30])

  calls += (await Promise.all([reserved(a, budget, 30), reserved(b, budget, 30)])).reduce((sum, n) => sum + n, 0)
  t.equal(calls, 50, 'the day ends at the budget, restart or not')
  t.same(await a.read(['team']), [50])
})

t.test('while Redis is down a replica reports a counter it only read as it last read it', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const redis = await ownRedis(t)
  const [onA, onB] = await Promise.all([connect(t, redis.url), connect(t, redis.url)])
  const [a, b] = [onA, onB].map((connection) => new RedisCounterStore({ connection, keyPrefix: 'gw:', outageShare: 0.1, now: () => NOW })) as [RedisCounterStore, RedisCounterStore]
  for (let i = 0; i < 3; i++) await a.reserve(TEAM, TOMORROW)
  t.same(await b.read(['team', 'nobody']), [3, 0])
  const closed = next(onB.client, 'close')
  await redis.kill()
  await closed
  t.same(await b.read(['team', 'nobody']), [3, 0])
  // ownRedis stops a running server when the test ends.
  await redis.start()
})

t.test('a Redis restarted empty while another replica is not back (or stopped): a replica does not spend what it knew the others had spent', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const redis = await ownRedis(t)
  const budget = [{ key: 'team', limit: 50 }]
  const [onA, onB] = await Promise.all([connect(t, redis.url), connect(t, redis.url)])
  const [a, b] = [onA, onB].map((connection) => new RedisCounterStore({ connection, keyPrefix: 'gw:', outageShare: 0.1, now: () => NOW })) as [RedisCounterStore, RedisCounterStore]
  t.equal((await reserved(b, budget, 20)) + (await reserved(a, budget, 10)), 30)
  await onB.close()

  const closed = next(onA.client, 'close')
  await redis.kill()
  await closed
  const ready = next(onA.client, 'ready')
  await redis.start()
  await ready
  t.same(await a.read(['team']), [10], 'Redis has only the tally of the replica that came back')
  t.equal(await reserved(a, budget, 40), 20, 'which still spends only the 20 it knew were left')
})
