import { randomUUID } from 'node:crypto'
import type { RedisConnection } from './redis.js'
import { decide, RATE_WINDOW_MS, windowOf, type RateDecision, type RateLimiter } from './rate-limiter.js'
import { defineScripts } from './lua.js'


/**
 * A lease is at most a tenth of the limit and an eighth of what is left (at least 1): up to four
 * replicas drawing at once leave half of the rest in Redis, and leases shrink as the window fills,
 * so few tokens sit unused in another replica when it ends.
 */
const LARGEST_LEASE_SHARE = 0.1
const LEFT_SPLIT = 8

interface LeaseCommands {
  rateLease(key: string, ...args: Array<string | number>): Promise<[number, number]>
}

/** What this replica holds of one consumer's window. */
interface Lease {
  window: number
  /** `taken` as Redis last reported it; it only grows within a window. */
  taken: number
  /** Leased tokens not used yet. */
  tokens: number
  /** Requests admitted alone (Redis unavailable) and not yet reported to Redis. */
  alone: number
  /** The lease request that has not succeeded yet: retried with the same id and count, so it counts once. */
  pending: { id: string; alone: number } | undefined
  /** The lease request on its way: one round trip at a time per consumer. */
  refill: Promise<void> | undefined
  /** The last lease request failed: this replica decides alone until one succeeds. */
  failing: boolean
}

export interface RedisRateLimiterOptions {
  connection: RedisConnection
  keyPrefix: string
  limit: number
  now: () => number
}

/**
 * One limit across replicas that never admits more than the limit in a window, however many
 * replicas, and costs a cache hit no Redis round trip while the replica holds tokens: each replica
 * leases a few tokens at a time from the shared count (LEASE above), `tryTake` spends them
 * synchronously, and `take` fetches the next lease when they run out. Tokens leased but unused
 * when the window ends are lost: the limit errs low by at most a lease per replica.
 *
 * x-ratelimit-remaining is the limit less what every replica had taken when this one last heard
 * from Redis, plus this replica's unused tokens: exact with one replica; with more, it counts the
 * other replicas' unused tokens as used, and misses what they leased since.
 *
 * While Redis is unavailable (disconnected, or a lease request timed out) a replica spends the
 * tokens it holds, then counts alone from the shared count it last saw: at most what the limit
 * left then, so at most the limit in a window it never heard from Redis in, as the memory limiter
 * does; N replicas admit at most N x the limit (upstream calls keep the quota's own outage bound).
 * A replica counting alone asks for a lease in the background (one at a time); the first that
 * succeeds ends its outage and adds what it admitted alone to the shared count.
 */
export class RedisRateLimiter implements RateLimiter {
  readonly #connection: RedisConnection
  readonly #redis: LeaseCommands
  readonly #keyPrefix: string
  readonly #limit: number
  readonly #largestLease: number
  readonly #now: () => number
  readonly #leases = new Map<string, Lease>()
  /** Operation ids: unique per replica and request. */
  readonly #replicaId = randomUUID()
  #operations = 0

  constructor({ connection, keyPrefix, limit, now }: RedisRateLimiterOptions) {
    this.#connection = connection
    this.#keyPrefix = keyPrefix
    this.#limit = limit
    this.#largestLease = Math.ceil(limit * LARGEST_LEASE_SHARE)
    this.#now = now
    const client = connection.client
    defineScripts(client, ['rateLease'])
    this.#redis = client as unknown as LeaseCommands
  }

  tryTake(consumer: string): RateDecision | undefined {
    const now = this.#now()
    return this.#decide(consumer, this.#lease(consumer, windowOf(now)), now)
  }

  async take(consumer: string): Promise<RateDecision> {
    for (;;) {
      const now = this.#now()
      const lease = this.#lease(consumer, windowOf(now))
      const decision = this.#decide(consumer, lease, now)
      if (decision !== undefined) return decision
      // Ends: a lease request grants a token, or reports the window full, or fails (then this replica decides alone).
      await this.#refill(consumer, lease)
    }
  }

  #lease(consumer: string, window: number): Lease {
    let lease = this.#leases.get(consumer)
    if (lease === undefined || lease.window !== window) {
      lease = { window, taken: 0, tokens: 0, alone: 0, pending: undefined, refill: undefined, failing: false }
      this.#leases.set(consumer, lease)
    }
    return lease
  }

  /** Decides from what this replica holds; undefined when only a new lease can tell. */
  #decide(consumer: string, lease: Lease, now: number): RateDecision | undefined {
    const alone = lease.failing || !this.#connection.up
    let allowed = false
    // Within a window `taken` only grows: at 0 no lease will come, and tokens leased before this
    // replica's (or another's) requests admitted alone were counted must not be spent on top of them.
    if (this.#remaining(lease) > 0) {
      if (lease.tokens > 0) lease.tokens--
      else if (alone) lease.alone++
      else return undefined
      allowed = true
    }
    // Counting alone, a lease request in the background notices that Redis is back and reports what was admitted alone.
    if (alone && this.#connection.up) void this.#refill(consumer, lease)
    return decide(allowed, this.#limit, this.#remaining(lease), lease.window, now)
  }

  #remaining(lease: Lease): number {
    return this.#limit - lease.taken - lease.alone + lease.tokens
  }

  #refill(consumer: string, lease: Lease): Promise<void> {
    lease.refill ??= this.#requestLease(consumer, lease).finally(() => {
      lease.refill = undefined
      // Requests admitted alone while this one was on its way are reported by the next.
      if (!lease.failing && lease.alone > 0) void this.#refill(consumer, lease)
    })
    return lease.refill
  }

  async #requestLease(consumer: string, lease: Lease): Promise<void> {
    const pending = (lease.pending ??= { id: `${this.#replicaId}:${this.#operations++}`, alone: lease.alone })
    try {
      const [granted, taken] = await this.#redis.rateLease(
        `${this.#keyPrefix}${consumer}:${lease.window}`,
        this.#limit,
        this.#largestLease,
        LEFT_SPLIT,
        pending.id,
        pending.alone,
        2 * RATE_WINDOW_MS
      )
      lease.tokens += granted
      lease.taken = taken
      lease.alone -= pending.alone
      lease.pending = undefined
      lease.failing = false
    } catch {
      lease.failing = true
    }
  }
}
