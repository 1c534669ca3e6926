import t from 'tap'
import { MemoryJobStore } from '../../src/stores/memory-job-store.js'
import { RedisJobStore } from '../../src/stores/redis-job-store.js'
import { connect, NEEDS_REDIS, TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'
import { accounts, lease, lines, newJob, RETENTION, T0 } from '../contracts/job-store.js'

t.test('MemoryJobStore: a finished job and its records are gone EXPORT_RETENTION_SECONDS after it ended', async (t) => {
  let now = T0
  const store = new MemoryJobStore(RETENTION, () => now)
  await store.create(newJob('a'))
  await store.claim('a', lease('r1', now))
  await store.commit('a', lease('r1', now), { accounts: accounts(0, 10), cursor: 1, last: true })
  now += RETENTION - 1
  t.match(await store.get('a'), { state: 'done' })
  now += 1
  t.equal(await store.get('a'), undefined)
  t.same(await store.list(), [])
  t.same(await lines(store, 'a'), [])
})

t.test('RedisJobStore: a finished job and its records expire EXPORT_RETENTION_SECONDS after it ended; an unfinished one never does', { skip: NEEDS_REDIS }, async (t) => {
  const connection = await connect(t, TEST_REDIS_URL)
  const redis = connection.client
  const keyPrefix = testPrefix(t)
  const store = new RedisJobStore({ connection, keyPrefix, retentionMs: RETENTION })
  await store.create(newJob('a'))
  await store.create(newJob('b'))
  await store.claim('a', lease('r1', T0))
  await store.commit('a', lease('r1', T0), { accounts: accounts(0, 10), cursor: 1, last: true })
  for (const key of ['job:a', 'job:a:records']) {
    const ttl = await redis.pttl(`${keyPrefix}export:${key}`)
    t.ok(ttl > RETENTION - 60_000 && ttl <= RETENTION, `${key} expires in the retention time`)
  }
  t.equal(await redis.exists(`${keyPrefix}export:job:a:seen`), 0, 'the usernames seen are dropped once done')
  t.equal(await redis.pttl(`${keyPrefix}export:job:b`), -1)
  await redis.del(`${keyPrefix}export:job:a`)
  t.same((await store.list()).map((job) => job.id), ['b'], 'an expired job leaves the list')
  t.equal(await redis.zscore(`${keyPrefix}export:all`, 'a'), null, 'and its id the index')
})
