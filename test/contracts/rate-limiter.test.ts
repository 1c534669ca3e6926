import t from 'tap'
import { MemoryRateLimiter } from '../../src/stores/rate-limiter.js'
import { RedisRateLimiter } from '../../src/stores/redis-rate-limiter.js'
import { connect, NEEDS_REDIS, TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'
import { rateLimiterContract } from './rate-limiter.js'

t.test('MemoryRateLimiter', async (t) => {
  rateLimiterContract(t, async (_t, limit, now) => new MemoryRateLimiter(limit, now))
})

t.test('RedisRateLimiter', { skip: NEEDS_REDIS }, async (t) => {
  rateLimiterContract(t, async (t, limit, now) => new RedisRateLimiter({ connection: await connect(t, TEST_REDIS_URL), keyPrefix: testPrefix(t), limit, now }))
})
