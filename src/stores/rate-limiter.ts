/** The per-consumer request rate limit counts requests in windows of one minute, aligned to the clock's minutes. */
export const RATE_WINDOW_MS = 60_000

/** What the limit says about one request, and the x-ratelimit-* headers that tell the consumer. */
export interface RateDecision {
  allowed: boolean
  limit: number
  remaining: number
  /** Seconds until the window ends and the count restarts. */
  resetSeconds: number
}

/**
 * Counts each consumer's requests, once per request, in the page pipeline's admit() on either entry point.
 */
export interface RateLimiter {
  /** Counts the request and decides, synchronously, when this process holds what it needs to; undefined (nothing counted) when only `take` can. */
  tryTake(consumer: string): RateDecision | undefined
  /** Counts the request and decides. */
  take(consumer: string): Promise<RateDecision>
}

export const windowOf = (now: number): number => Math.floor(now / RATE_WINDOW_MS)

/** A decision in `window`; `remaining` is what the limiter can still admit in it (never shown below 0). */
export function decide(allowed: boolean, limit: number, remaining: number, window: number, now: number): RateDecision {
  return {
    allowed,
    limit,
    remaining: Math.max(0, remaining),
    resetSeconds: Math.ceil(((window + 1) * RATE_WINDOW_MS - now) / 1000)
  }
}

/** Counts in this process: every decision is synchronous. */
export class MemoryRateLimiter implements RateLimiter {
  readonly #limit: number
  readonly #now: () => number
  readonly #counts = new Map<string, { window: number; count: number }>()

  constructor(limit: number, now: () => number) {
    this.#limit = limit
    this.#now = now
  }

  tryTake(consumer: string): RateDecision {
    const now = this.#now()
    const window = windowOf(now)
    let entry = this.#counts.get(consumer)
    if (entry === undefined || entry.window !== window) {
      entry = { window, count: 0 }
      this.#counts.set(consumer, entry)
    }
    entry.count++
    return decide(entry.count <= this.#limit, this.#limit, this.#limit - entry.count, window, now)
  }

  async take(consumer: string): Promise<RateDecision> {
    return this.tryTake(consumer)
  }
}
