import type { RedisConnection } from './redis.js'
import { decide, RATE_WINDOW_MS, windowOf, type RateDecision, type RateLimiter } from './rate-limiter.js'

interface Count {
  window: number
  /** The shared count as Redis last reported it. */
  shared: number
  /** Requests counted here and not yet added in Redis. */
  pending: number
  /** Requests on their way to Redis. */
  sent: number
  sending: boolean
}

export interface RedisRateLimiterOptions {
  connection: RedisConnection
  keyPrefix: string
  limit: number
  now: () => number
}

/**
 * One limit across replicas that costs a request no Redis round trip while the consumer is well
 * under it: each replica decides alone from the shared count it last saw plus its own requests
 * since, and adds those in Redis in the background (one round trip at a time per consumer; what
 * arrives meanwhile goes in the next). In the last tenth of the limit, where a replica's view may be
 * behind the others', each request is counted in Redis before it is decided. While Redis is away
 * each replica counts alone.
 */
export class RedisRateLimiter implements RateLimiter {
  readonly #connection: RedisConnection
  readonly #keyPrefix: string
  readonly #limit: number
  /** Below `limit - headroom` this replica decides alone. */
  readonly #headroom: number
  readonly #now: () => number
  readonly #counts = new Map<string, Count>()

  constructor({ connection, keyPrefix, limit, now }: RedisRateLimiterOptions) {
    this.#connection = connection
    this.#keyPrefix = keyPrefix
    this.#limit = limit
    this.#headroom = Math.ceil(limit / 10)
    this.#now = now
  }

  tryTake(consumer: string): RateDecision | undefined {
    const now = this.#now()
    const count = this.#count(consumer, windowOf(now))
    const seen = count.shared + count.sent + count.pending + 1
    if (seen > this.#limit - this.#headroom) return undefined
    count.pending++
    this.#sync(consumer, count)
    return decide(this.#limit, seen, count.window, now)
  }

  async take(consumer: string): Promise<RateDecision> {
    const now = this.#now()
    const count = this.#count(consumer, windowOf(now))
    count.pending++
    const total = await this.#send(consumer, count)
    return decide(this.#limit, total, count.window, now)
  }

  #count(consumer: string, window: number): Count {
    let count = this.#counts.get(consumer)
    if (count === undefined || count.window !== window) {
      count = { window, shared: 0, pending: 0, sent: 0, sending: false }
      this.#counts.set(consumer, count)
    }
    return count
  }

  /** Adds the pending requests in Redis unless a round trip is already on its way; the next one takes what came meanwhile. */
  #sync(consumer: string, count: Count): void {
    if (count.sending) return
    count.sending = true
    void this.#send(consumer, count).finally(() => {
      count.sending = false
      if (count.pending > 0) this.#sync(consumer, count)
    })
  }

  /** Adds what is pending in Redis; resolves with the shared count including it. */
  async #send(consumer: string, count: Count): Promise<number> {
    const added = count.pending
    count.pending = 0
    count.sent += added
    const key = `${this.#keyPrefix}${consumer}:${count.window}`
    try {
      const replies = await this.#connection.client.multi().incrby(key, added).pexpire(key, 2 * RATE_WINDOW_MS).exec()
      const total = Number(replies?.[0]?.[1])
      if (!Number.isInteger(total)) throw new Error('Redis answered the rate count with something else')
      // Replies may arrive out of order; within a window the shared count only grows.
      count.shared = Math.max(count.shared, total)
      return total
    } catch {
      count.shared += added
      return count.shared + count.sent - added + count.pending
    } finally {
      count.sent -= added
    }
  }
}
