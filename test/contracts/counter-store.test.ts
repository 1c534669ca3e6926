import t from 'tap'
import { MemoryCounterStore } from '../../src/stores/memory-counter-store.js'
import { RedisCounterStore } from '../../src/stores/redis-counter-store.js'
import { connect, NEEDS_REDIS, TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'
import { counterStoreContract } from './counter-store.js'

t.test('MemoryCounterStore', async (t) => {
  counterStoreContract(t, async (_t, now) => new MemoryCounterStore(now))
})

t.test('RedisCounterStore', { skip: NEEDS_REDIS }, async (t) => {
  counterStoreContract(t, async (t, now) => {
    const connection = await connect(t, TEST_REDIS_URL)
    return new RedisCounterStore({ connection, keyPrefix: testPrefix(t), outageShare: 0.1, now })
  })
})
