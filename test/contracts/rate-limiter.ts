import type { Test } from 'tap'
import type { RateDecision, RateLimiter } from '../../src/stores/rate-limiter.js'

/** A fresh limiter with the given limit on the given clock; teardown is the factory's business. */
export type RateLimiterFactory = (t: Test, limit: number, now: () => number) => Promise<RateLimiter>

export const MINUTE = Date.parse('2030-01-01T10:00:00Z')

/** One request as the gateway counts it: synchronously when the limiter can (before the first await), else through `take`. */
export const request = async (limiter: RateLimiter, consumer: string): Promise<RateDecision> => limiter.tryTake(consumer) ?? limiter.take(consumer)

/** What every RateLimiter must do: memory, Redis, and any limiter added later. */
export function rateLimiterContract(t: Test, factory: RateLimiterFactory): void {
  t.test('admits the limit in a minute, then refuses; the headers count down to 0 and tell when the minute ends', async (t) => {
    const now = MINUTE + 15_000
    const limiter = await factory(t, 5, () => now)
    const decisions = []
    for (let i = 0; i < 7; i++) decisions.push(await request(limiter, 'alice'))
    t.same(
      decisions.map(({ allowed }) => allowed),
      [true, true, true, true, true, false, false]
    )
    t.same(
      decisions.map(({ remaining }) => remaining),
      [4, 3, 2, 1, 0, 0, 0]
    )
    t.ok(decisions.every(({ limit, resetSeconds }) => limit === 5 && resetSeconds === 45))
    t.match(await limiter.take('alice'), { allowed: false, remaining: 0 }, 'take refuses as tryTake does')
  })

  t.test('each consumer has a count of its own', async (t) => {
    const limiter = await factory(t, 2, () => MINUTE)
    await request(limiter, 'alice')
    await request(limiter, 'alice')
    t.match(await request(limiter, 'alice'), { allowed: false })
    t.match(await request(limiter, 'bob'), { allowed: true, remaining: 1 })
  })

  t.test('a new minute of the injected clock starts a new count', async (t) => {
    let now = MINUTE + 59_000
    const limiter = await factory(t, 2, () => now)
    await request(limiter, 'alice')
    await request(limiter, 'alice')
    t.match(await request(limiter, 'alice'), { allowed: false, resetSeconds: 1 })
    now = MINUTE + 60_000
    t.match(await request(limiter, 'alice'), { allowed: true, remaining: 1, resetSeconds: 60 })
  })

  t.test('concurrent requests never pass the limit', async (t) => {
    const limiter = await factory(t, 25, () => MINUTE)
    const decisions = await Promise.all(Array.from({ length: 40 }, () => request(limiter, 'alice')))
    t.equal(decisions.filter(({ allowed }) => allowed).length, 25)
    t.same(decisions.map(({ remaining }) => remaining).filter((remaining) => remaining < 0), [], 'remaining is never negative')
  })
}
