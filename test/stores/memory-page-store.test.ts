import t from 'tap'
import { MemoryPageStore, pageEntryBytes } from '../../src/stores/memory-page-store.js'
import { storedPage, T0 } from '../contracts/page-store.js'

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
