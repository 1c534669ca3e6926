import t from 'tap'
import { MemoryJobStore } from '../../src/stores/memory-job-store.js'
import { RedisJobStore } from '../../src/stores/redis-job-store.js'
import { connect, NEEDS_REDIS, TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'
import { jobStoreContract, RETENTION } from './job-store.js'

t.test('MemoryJobStore', async (t) => {
  jobStoreContract(t, async (_t, now) => new MemoryJobStore(RETENTION, now))
})

t.test('RedisJobStore', { skip: NEEDS_REDIS }, async (t) => {
  jobStoreContract(t, async (t) => new RedisJobStore({ connection: await connect(t, TEST_REDIS_URL), keyPrefix: testPrefix(t), retentionMs: RETENTION }))
})
