import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Time as the gateway reads it and waits on it: retries, deadlines, lock heartbeats, polling and
 * the job sweep all wait here, so that a test moves one clock (test/helpers/clock.ts) instead of
 * sleeping. Code that only reads the time takes `now` alone.
 */
export interface Clock {
  now: () => number
  /** Resolves after `ms`. */
  sleep: (ms: number) => Promise<void>
  /** Calls `fn` once after `ms`; returns the cancel. The timer does not keep the process alive. */
  setTimeout: (fn: () => void, ms: number) => () => void
  /** Calls `fn` every `ms`; returns the cancel. The timer does not keep the process alive. */
  setInterval: (fn: () => void, ms: number) => () => void
}

export const systemClock: Clock = {
  now: Date.now,
  // Ref'd: whoever awaits it is work in progress.
  sleep: (ms) => sleep(ms),
  setTimeout: (fn, ms) => {
    const timer = setTimeout(fn, ms).unref()
    return () => clearTimeout(timer)
  },
  setInterval: (fn, ms) => {
    const timer = setInterval(fn, ms).unref()
    return () => clearInterval(timer)
  }
}
