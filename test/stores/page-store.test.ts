import t from 'tap'
import { MemoryPageStore, pageEntryBytes } from '../../src/stores/memory-page-store.js'
import { RedisPageStore } from '../../src/stores/redis-page-store.js'
import { NEEDS_REDIS, TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'
import { readingClock } from '../helpers/clock.js'
import { pageStoreContract, storedPage, T0 } from './page-store-contract.js'
import { connect } from './redis-connection.js'

t.test('MemoryPageStore', async (t) => {
  pageStoreContract(t, async (_t, { staleMaxMs, now }) => new MemoryPageStore(1024 * 1024, staleMaxMs, now))
})

t.test("an entry counts its body, key and ETag bytes and a fixed overhead, so that many tiny pages still fill the budget", async (t) => {
  const page = storedPage(T0, 'one')
  const bare = pageEntryBytes('', { ...page, body: Buffer.alloc(0), etag: '' })
  t.ok(bare > 0)
  t.equal(pageEntryBytes('key', page), bare + 3 + page.body.byteLength + page.etag.length)
})

t.test('eviction keeps the entries within the byte budget, oldest first', async (t) => {
  const page = storedPage(T0, 'one')
  const entry = pageEntryBytes('k0', page)
  const store = new MemoryPageStore(3 * entry, 1000, () => T0)
  t.teardown(() => store.close())
  for (const key of ['k0', 'k1', 'k2', 'k3']) await store.fetch(key, async () => storedPage(T0, 'one'))
  t.equal(store.peekFresh('k0'), undefined, 'a fourth entry does not fit')
  for (const key of ['k1', 'k2', 'k3']) t.ok(store.peekFresh(key), `${key} is held`)

  const tight = new MemoryPageStore(3 * entry - 1, 1000, () => T0)
  t.teardown(() => tight.close())
  for (const key of ['k0', 'k1', 'k2']) await tight.fetch(key, async () => storedPage(T0, 'one'))
  t.equal(tight.peekFresh('k0'), undefined, 'one byte short of three entries holds two')
  t.ok(tight.peekFresh('k2'))
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
