import FakeTimers from '@sinonjs/fake-timers'
import { systemClock, type Clock } from '../../src/clock.js'

/**
 * The system's timers, read at the time `now` gives, for tests that set the date; the gateway's
 * pauses (backoff, a short Retry-After) end at once, so retries cost no real time. Deadlines still run.
 */
export const readingClock = (now: () => number): Clock => ({ ...systemClock, now, sleep: async () => {} })

/**
 * A clock that does not move: for tests that count within one window (the rate limit's minute, the
 * UTC day), where a boundary crossed mid-test on the real clock resets the count.
 */
export const STOPPED_CLOCK = readingClock(() => Date.parse('2030-01-01T10:00:10.500Z'))

export interface ManualClock extends Clock {
  /** Moves the clock on by `ms`, running each timer that falls due, in order, and the promises it settles. */
  advance(ms: number): Promise<void>
}

/** A clock that moves only when the test advances it: no test waits in real time for a retry, deadline, lease or sweep. */
export function manualClock(start = Date.parse('2030-01-01T10:00:10.500Z')): ManualClock {
  const fake = FakeTimers.createClock(start)
  return {
    now: () => fake.now,
    sleep: (ms) => new Promise((resolve) => fake.setTimeout(() => resolve(), ms)),
    setTimeout: (fn, ms) => {
      const id = fake.setTimeout(fn, ms)
      return () => fake.clearTimeout(id)
    },
    setInterval: (fn, ms) => {
      const id = fake.setInterval(fn, ms)
      return () => fake.clearInterval(id)
    },
    advance: async (ms) => {
      await fake.tickAsync(ms)
    }
  }
}
