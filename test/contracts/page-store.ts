import type { Test } from 'tap'
import { failure } from '../../src/errors.js'
import type { PageStore, StoredPage } from '../../src/stores/page-store.js'

/** A fresh, empty store keeping expired pages `staleMaxMs` on the given clock; teardown is the factory's business. */
export type PageStoreFactory = (t: Test, options: { staleMaxMs: number; now: () => number }) => Promise<PageStore>

export const T0 = Date.parse('2020-02-28T12:00:00Z')
export const TTL_MS = 60_000
export const STALE_MS = 600_000

export function storedPage(now: number, text: string): StoredPage {
  return { body: Buffer.from(JSON.stringify({ text })), etag: `"${text}"`, storedAt: now, expiresAt: now + TTL_MS, nextCursor: 42 }
}

/** What every PageStore must do: memory, Redis, and any store added later. */
export function pageStoreContract(t: Test, factory: PageStoreFactory): void {
  const setup = async (t: Test) => {
    const clock = { now: T0 }
    const store = await factory(t, { staleMaxMs: STALE_MS, now: () => clock.now })
    let loads = 0
    const loader = (text: string) => async () => {
      loads++
      await new Promise((resolve) => setImmediate(resolve))
      return storedPage(clock.now, text)
    }
    return { clock, store, loader, loads: () => loads }
  }

  t.test('concurrent fetches of a missing page load it once; the others are coalesced', async (t) => {
    const { store, loader, loads } = await setup(t)
    const results = await Promise.all(Array.from({ length: 20 }, () => store.fetch('k', loader('one'))))
    t.equal(loads(), 1)
    t.same(results.map((r) => r.outcome).sort(), [...Array(19).fill('coalesced'), 'miss'])
    for (const { page } of results) t.same(page, storedPage(T0, 'one'))
  })

  t.test('a fresh page is a hit without a load, and peekFresh returns it synchronously', async (t) => {
    const { store, loader, loads } = await setup(t)
    await store.fetch('k', loader('one'))
    const again = await store.fetch('k', loader('two'))
    t.equal(again.outcome, 'hit')
    t.same(again.page, storedPage(T0, 'one'))
    t.same(store.peekFresh('k'), storedPage(T0, 'one'))
    t.equal(store.peekFresh('other'), undefined)
    t.equal(loads(), 1)
  })

  t.test('an expired page is loaded again, and peekFresh no longer returns it', async (t) => {
    const { clock, store, loader, loads } = await setup(t)
    await store.fetch('k', loader('one'))
    clock.now += TTL_MS
    t.equal(store.peekFresh('k'), undefined)
    const again = await store.fetch('k', loader('two'))
    t.equal(again.outcome, 'miss')
    t.same(again.page, storedPage(clock.now, 'two'))
    t.equal(loads(), 2)
  })

  t.test('a failed reload returns the expired page as stale with the error, until the stale window ends', async (t) => {
    const { clock, store, loader } = await setup(t)
    await store.fetch('k', loader('one'))
    const down = failure('GW_UPSTREAM_UNAVAILABLE', 'down')
    clock.now += TTL_MS + 1
    const stale = await store.fetch('k', () => Promise.reject(down))
    t.equal(stale.outcome, 'stale')
    t.equal(stale.error, down)
    t.same(stale.page, storedPage(T0, 'one'))
    clock.now = T0 + TTL_MS + STALE_MS + 1
    await t.rejects(store.fetch('k', () => Promise.reject(down)), down)
  })

  t.test('a page whose body is a view into a larger buffer is held in memory of its own, as the budget counts it', async (t) => {
    const { store } = await setup(t)
    const page = storedPage(T0, 'one')
    const larger = Buffer.concat([Buffer.alloc(100), page.body, Buffer.alloc(100)])
    await store.fetch('k', async () => ({ ...page, body: larger.subarray(100, 100 + page.body.length) }))
    const held = store.peekFresh('k')
    t.same(held, page)
    t.equal(held?.body.buffer.byteLength, page.body.length)
  })

  t.test('a failed load without any page rejects with its error', async (t) => {
    const { store } = await setup(t)
    const gone = failure('GW_USER_NOT_FOUND', 'no such user')
    await t.rejects(store.fetch('k', () => Promise.reject(gone)), gone)
  })
}
