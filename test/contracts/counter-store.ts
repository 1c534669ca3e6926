import type { Test } from 'tap'
import type { CounterStore } from '../../src/stores/counter-store.js'

/** A fresh, empty store on the given clock; teardown is the factory's business. */
export type CounterStoreFactory = (t: Test, now: () => number) => Promise<CounterStore>

const NOW = Date.parse('2020-02-28T12:00:00Z')
const TOMORROW = Date.parse('2020-02-29T00:00:00Z')

/** What every CounterStore must do: memory, Redis, and any store added later. */
export function counterStoreContract(t: Test, factory: CounterStoreFactory): void {
  const store = (t: Test) => factory(t, () => NOW)

  t.test('reserve counts one on every counter, and refuses naming the first counter at its limit without counting any', async (t) => {
    const counters = await store(t)
    const limits = [
      { key: 'team', limit: 3 },
      { key: 'alice', limit: 2 }
    ]
    t.equal(await counters.reserve(limits, TOMORROW), -1)
    t.equal(await counters.reserve(limits, TOMORROW), -1)
    t.equal(await counters.reserve(limits, TOMORROW), 1, 'alice is at her limit')
    t.same(await counters.read(['team', 'alice']), [2, 2], 'the refusal counted nothing')
    t.equal(await counters.reserve([{ key: 'team', limit: 3 }, { key: 'bob', limit: 5 }], TOMORROW), -1)
    t.equal(await counters.reserve([{ key: 'team', limit: 3 }, { key: 'bob', limit: 5 }], TOMORROW), 0, 'the team is at its limit')
    t.same(await counters.read(['team', 'alice', 'bob']), [3, 2, 1])
  })

  t.test('concurrent reservations never pass a limit', async (t) => {
    const counters = await store(t)
    const results = await Promise.all(Array.from({ length: 40 }, () => counters.reserve([{ key: 'team', limit: 25 }], TOMORROW)))
    t.equal(results.filter((refused) => refused === -1).length, 25)
    t.same(await counters.read(['team']), [25])
  })

  t.test('raise lifts a counter to at least a value, never lowers it', async (t) => {
    const counters = await store(t)
    await counters.reserve([{ key: 'team', limit: 10 }], TOMORROW)
    await counters.raise('team', 7, TOMORROW)
    t.same(await counters.read(['team']), [7])
    await counters.raise('team', 3, TOMORROW)
    t.same(await counters.read(['team']), [7])
    t.equal(await counters.reserve([{ key: 'team', limit: 7 }], TOMORROW), 0)
  })

  t.test('an unknown counter reads 0', async (t) => {
    t.same(await (await store(t)).read(['nobody', 'nothing']), [0, 0])
  })
}
