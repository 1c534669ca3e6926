import t from 'tap'
import { MemoryPageStore } from '../../src/stores/memory-page-store.js'
import { RedisPageStore } from '../../src/stores/redis-page-store.js'
import { connect, NEEDS_REDIS, TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'
import { readingClock } from '../helpers/clock.js'
import { pageStoreContract } from './page-store.js'

t.test('MemoryPageStore', async (t) => {
  pageStoreContract(t, async (_t, { staleMaxMs, now }) => new MemoryPageStore(1024 * 1024, staleMaxMs, now))
})

t.test('RedisPageStore', { skip: NEEDS_REDIS }, async (t) => {
  pageStoreContract(t, async (t, { staleMaxMs, now }) => {
    const connection = await connect(t, TEST_REDIS_URL, 'cache')
    const store = new RedisPageStore({
      connection,
      keyPrefix: testPrefix(t),
      memoryMaxBytes: 1024 * 1024,
      redisMaxBytes: 1024 * 1024,
      staleMaxMs,
      lockTtlMs: 5000,
      waitMs: 5000,
      pollMs: 50,
      errorTtlMs: 1000,
      clock: readingClock(now),
      onWriteError: (error) => t.fail(`a cache write failed: ${String(error)}`)
    })
    t.teardown(() => store.close())
    return store
  })
})
