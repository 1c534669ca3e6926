import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import pino from 'pino'
import { windowOf, type RateDecision } from '../../src/stores/rate-limiter.js'
import { RedisConnection } from '../../src/stores/redis.js'
import { RedisRateLimiter } from '../../src/stores/redis-rate-limiter.js'
import { connect, NEEDS_REDIS, NEEDS_REDIS_SERVER, TEST_REDIS_URL, ownRedis, testPrefix } from '../helpers/redis.js'
import { MINUTE, request } from '../contracts/rate-limiter.js'

const admitted = (decisions: RateDecision[]) => decisions.filter(({ allowed }) => allowed).length
/** The replica of the i-th request: requests alternate between the two. */
const replicaOf = <T>([a, b]: [T, T], i: number): T => (i % 2 === 0 ? a : b)

/** Two replicas' limiters on the shared Redis, each on a connection of its own, sharing one key prefix. */
async function twoReplicas(t: Test, limit: number, now: () => number): Promise<[RedisRateLimiter, RedisRateLimiter]> {
  const keyPrefix = testPrefix(t)
  const [a, b] = await Promise.all([connect(t, TEST_REDIS_URL), connect(t, TEST_REDIS_URL)])
  return [new RedisRateLimiter({ connection: a, keyPrefix, limit, now }), new RedisRateLimiter({ connection: b, keyPrefix, limit, now })]
}

t.test('on Redis: 400 concurrent requests over two replicas admit at most the limit, and nearly all of it', { skip: NEEDS_REDIS }, async (t) => {
  let now = MINUTE + 1_000
  const replicas = await twoReplicas(t, 100, () => now)
  const burst = () => Promise.all(Array.from({ length: 400 }, (_, i) => request(replicaOf(replicas, i), 'alice')))

  const first = await burst()
  t.comment(`admitted ${admitted(first)} of 400 with a limit of 100`)
  t.ok(admitted(first) <= 100, `never more than the limit (${admitted(first)})`)
  t.ok(admitted(first) >= 90, `at most a few lost to unused leases (${admitted(first)})`)
  t.same(
    first.filter(({ allowed }) => !allowed).map(({ remaining }) => remaining),
    Array.from({ length: 400 - admitted(first) }, () => 0),
    'a refusal says 0 remaining'
  )
  t.equal(admitted(await burst()), 0, 'the rest of the minute admits nothing more')

  now += 60_000
  const next = await burst()
  t.ok(admitted(next) <= 100 && admitted(next) >= 90, `the next minute starts a new count (${admitted(next)})`)
})

t.test('on Redis: a replica holding a lease decides synchronously; the headers count what every replica took', { skip: NEEDS_REDIS }, async (t) => {
  const now = () => MINUTE + 30_000
  const [a, b] = await twoReplicas(t, 100, now)
  t.equal(a.tryTake('alice'), undefined, 'without a lease only take can decide')
  t.match(await a.take('alice'), { allowed: true, remaining: 99, resetSeconds: 30 })
  t.match(a.tryTake('alice'), { allowed: true, remaining: 98 }, 'from the lease: no round trip')
  const onB = await b.take('alice')
  t.ok(onB.allowed && onB.remaining < 98, `B's remaining leaves out what A leased (${onB.remaining})`)
})

t.test('on Redis: while Redis is stopped each replica counts alone, at most the limit, and shares again once it answers', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const redis = await ownRedis(t)
  const limit = 100
  let now = MINUTE + 1_000
  const open = async () => {
    const connection = new RedisConnection({ url: redis.url, role: 'state', connectTimeoutMs: 500, commandTimeoutMs: 50, logger: pino({ level: 'silent' }) })
    t.teardown(() => connection.close())
    await connection.ready(2000)
    return connection
  }
  const keyPrefix = testPrefix(t, redis.url)
  const connections = [await open(), await open()] as const
  const replicaOn = (connection: RedisConnection) => new RedisRateLimiter({ connection, keyPrefix, limit, now: () => now })
  const replicas: [RedisRateLimiter, RedisRateLimiter] = [replicaOn(connections[0]), replicaOn(connections[1])]
  const direct = new Redis(redis.url)
  t.teardown(() => direct.disconnect())
  const counted: [number, number] = [0, 0]
  const fire = async (count: number) => {
    const decisions = await Promise.all(Array.from({ length: count }, (_, i) => request(replicaOf(replicas, i), 'alice')))
    decisions.forEach(({ allowed }, i) => (counted[i % 2 === 0 ? 0 : 1] += allowed ? 1 : 0))
    return decisions
  }

  t.equal(admitted(await fire(6)), 6)
  redis.pause()
  t.teardown(() => redis.resume())
  t.equal(admitted(await fire(80)), 80, 'well under the limit, the outage admits alone')
  // Retries of the timed-out lease while Redis is still stopped: each must be granted once when it answers.
  for (let i = 0; i < 3; i++) {
    await fire(2)
    await new Promise((resolve) => setTimeout(resolve, 60))
  }
  await fire(300)
  t.ok(
    counted.every((count) => count <= limit),
    `each replica admits at most the limit alone (${counted.join(' + ')})`
  )
  t.ok(
    counted.every((count) => count >= limit - 20),
    `and close to it (${counted.join(' + ')})`
  )

  redis.resume()
  // Timeouts short enough to stop quickly above; after the outage, long enough that a busy test machine does not start another.
  for (const { client } of connections) client.options.commandTimeout = 1000
  const key = `${keyPrefix}alice:${windowOf(now)}`
  const taken = async () => Number((await direct.hget(key, 'taken')) ?? 0)
  for (let tries = 0; tries < 100 && (await taken()) < counted[0] + counted[1]; tries++) {
    await fire(2)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.ok(
    counted.every((count) => count <= limit),
    `leases granted after the outage are not spent on top of what was admitted alone (${counted.join(' + ')})`
  )
  const shared = await taken()
  t.ok(shared >= counted[0] + counted[1], `what the replicas admitted alone reached the shared count (${shared})`)
  t.ok(shared <= counted[0] + counted[1] + 2 * (limit / 10), `no lease was granted twice (${shared} taken for ${counted.join(' + ')} admitted)`)

  now += 60_000
  counted.fill(0)
  const next = await fire(400)
  t.ok(admitted(next) <= limit && admitted(next) >= limit - 10, `the next minute is shared again (${admitted(next)})`)
})
