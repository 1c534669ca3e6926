import t from 'tap'
import { Redis } from 'ioredis'
import { MemoryRateLimiter } from '../../src/stores/rate-limiter.js'
import { RedisRateLimiter } from '../../src/stores/redis-rate-limiter.js'
import { NEEDS_REDIS, TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'
import { connect } from './redis-connection.js'

const MINUTE = Date.parse('2030-01-01T10:00:00Z')

t.test('in memory: each consumer has its own count, per minute of the clock', async (t) => {
  let now = MINUTE + 15_000
  const limiter = new MemoryRateLimiter(2, () => now)
  t.match(limiter.tryTake('alice'), { allowed: true, limit: 2, remaining: 1, resetSeconds: 45 })
  t.match(limiter.tryTake('alice'), { allowed: true, remaining: 0 })
  t.match(limiter.tryTake('alice'), { allowed: false, remaining: 0 })
  t.match(limiter.tryTake('bob'), { allowed: true, remaining: 1 })
  now = MINUTE + 60_000
  t.match(limiter.tryTake('alice'), { allowed: true, remaining: 1, resetSeconds: 60 }, 'a new minute starts a new count')
})

t.test('on Redis: far from the limit a replica decides alone and adds its count in the background; near it, Redis decides', { skip: NEEDS_REDIS }, async (t) => {
  const now = () => MINUTE + 1_000
  const keyPrefix = testPrefix(t)
  const [a, b] = await Promise.all([connect(t, TEST_REDIS_URL), connect(t, TEST_REDIS_URL)])
  const replicaA = new RedisRateLimiter({ connection: a, keyPrefix, limit: 20, now })
  const replicaB = new RedisRateLimiter({ connection: b, keyPrefix, limit: 20, now })
  const direct = new Redis(TEST_REDIS_URL)
  t.teardown(() => direct.disconnect())
  const key = `${keyPrefix}alice:${Math.floor(MINUTE / 60_000)}`

  for (let i = 1; i <= 10; i++) t.match(replicaA.tryTake('alice'), { allowed: true, remaining: 20 - i })
  // Wait for the background additions to land.
  for (let tries = 0; (await direct.get(key)) !== '10' && tries < 100; tries++) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(await direct.get(key), '10', 'every request reached the shared count')
  t.ok((await direct.pttl(key)) > 0, 'the count expires')

  t.match(replicaB.tryTake('alice'), { allowed: true, remaining: 19 }, 'B has not seen A yet: well under the limit it may decide alone')
  t.match(await replicaB.take('alice'), { allowed: true, remaining: 8 }, 'the shared count: A 10, B 2')
  for (let i = 0; i < 6; i++) await replicaA.take('alice')
  t.equal(replicaA.tryTake('alice'), undefined, 'in the last tenth a replica does not decide alone')
  t.match(await replicaA.take('alice'), { allowed: true, remaining: 1 })
  t.match(await replicaB.take('alice'), { allowed: true, remaining: 0 })
  t.match(await replicaB.take('alice'), { allowed: false, remaining: 0, limit: 20 })
  t.match(await replicaA.take('alice'), { allowed: false })
})
