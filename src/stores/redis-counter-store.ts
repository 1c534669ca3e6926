import type { CounterStore, Limit } from './counter-store.js'
import { MemoryCounterStore } from './memory-counter-store.js'
import type { RedisConnection } from './redis.js'

/*
 * The quota scripts may run when Redis is out of memory (allow-oom): under `noeviction` a full
 * Redis refuses ordinary writes, and the day's count must still go up, or the budget is overrun.
 * Counters expire relative to the app's clock (PEXPIRE, not PEXPIREAT), so the day a counter
 * belongs to is the app's, as in memory.
 */

/** KEYS: the counters; ARGV[1]: ms until they expire; ARGV[1 + i]: the limit of KEYS[i]. Returns {refused index or -1, values}. */
const RESERVE = `#!lua flags=allow-oom
local values = {}
for i, key in ipairs(KEYS) do
  values[i] = tonumber(redis.call('GET', key) or '0')
  if values[i] + 1 > tonumber(ARGV[i + 1]) then return {i - 1, values} end
end
for i, key in ipairs(KEYS) do
  values[i] = redis.call('INCR', key)
  redis.call('PEXPIRE', key, ARGV[1])
end
return {-1, values}`

/** KEYS[1]: a counter; ARGV[1]: ms until it expires; ARGV[2]: its new minimum. */
const RAISE = `#!lua flags=allow-oom
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[2]) then redis.call('SET', KEYS[1], ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0`

/** KEYS[1]: a counter; ARGV[1]: ms until it expires; ARGV[2]: calls to add (made while Redis was unavailable). */
const ADD = `#!lua flags=allow-oom
local value = redis.call('INCRBY', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return value`

interface QuotaCommands {
  quotaReserve(...args: Array<string | number>): Promise<[number, number[]]>
  quotaRaise(...args: Array<string | number>): Promise<number>
  quotaAdd(...args: Array<string | number>): Promise<number>
}

export interface RedisCounterStoreOptions {
  connection: RedisConnection
  keyPrefix: string
  /** Share of a budget's last known remainder this replica may spend alone during one outage. */
  outageShare: number
  now: () => number
}

/**
 * Counters shared by every replica, reserved by one Lua script so that no two replicas both take
 * the last unit. While Redis is unavailable each replica spends at most `outageShare` of what was
 * left of each budget when it last heard from Redis, in process memory; those calls are added to
 * the shared counters when Redis is back, so the day's count stays right.
 */
export class RedisCounterStore implements CounterStore {
  readonly #connection: RedisConnection
  readonly #redis: QuotaCommands
  readonly #prefix: string
  readonly #share: number
  readonly #now: () => number
  /** The shared value of each counter when this replica last read or changed it. */
  readonly #known = new Map<string, number>()
  /** Calls made during the current outage, per counter, with when each counter expires. */
  #outage: { store: MemoryCounterStore; expiresAt: Map<string, number> }
  /** Outage calls not yet added to the shared counters (Redis failed again while adding them). */
  readonly #pending = new Map<string, { count: number; expiresAt: number }>()
  #settling: Promise<void> | undefined

  constructor({ connection, keyPrefix, outageShare, now }: RedisCounterStoreOptions) {
    this.#connection = connection
    this.#prefix = keyPrefix
    this.#share = outageShare
    this.#now = now
    this.#outage = this.#newOutage()
    const client = connection.client
    if (!('quotaReserve' in client)) {
      client.defineCommand('quotaReserve', { lua: RESERVE })
      client.defineCommand('quotaRaise', { numberOfKeys: 1, lua: RAISE })
      client.defineCommand('quotaAdd', { numberOfKeys: 1, lua: ADD })
    }
    this.#redis = client as unknown as QuotaCommands
    connection.onRecover(() => void this.#settle())
  }

  async reserve(limits: readonly Limit[], expiresAt: number): Promise<number> {
    if (this.#connection.up) {
      try {
        await this.#settled()
        const keys = limits.map(({ key }) => this.#prefix + key)
        const [refused, values] = await this.#redis.quotaReserve(keys.length, ...keys, this.#ttl(expiresAt), ...limits.map(({ limit }) => limit))
        // A refusal returns the values up to the refusing counter.
        limits.slice(0, values.length).forEach(({ key }, i) => this.#known.set(key, values[i] ?? 0))
        return refused
      } catch {
        // Unavailable or slow: this request is counted locally below.
      }
    }
    const local = limits.map(({ key, limit }) => ({ key, limit: this.#outageAllowance(key, limit) }))
    const refused = await this.#outage.store.reserve(local, expiresAt)
    if (refused === -1) for (const { key } of limits) this.#outage.expiresAt.set(key, expiresAt)
    return refused
  }

  async raise(key: string, value: number, expiresAt: number): Promise<void> {
    if (this.#connection.up) {
      try {
        await this.#settled()
        await this.#redis.quotaRaise(this.#prefix + key, this.#ttl(expiresAt), value)
        this.#known.set(key, Math.max(value, this.#known.get(key) ?? 0))
        return
      } catch {
        // Kept locally: the outage store refuses further calls until the day ends.
      }
    }
    await this.#outage.store.raise(key, value, expiresAt)
    this.#outage.expiresAt.set(key, expiresAt)
  }

  async read(keys: readonly string[]): Promise<number[]> {
    if (this.#connection.up) {
      try {
        await this.#settled()
        const values = (await this.#connection.client.mget(keys.map((key) => this.#prefix + key))).map((value) => Number(value ?? 0))
        keys.forEach((key, i) => this.#known.set(key, values[i] ?? 0))
        return values
      } catch {
        // Reported from what this replica knows.
      }
    }
    const local = await this.#outage.store.read(keys)
    return keys.map((key, i) => (this.#known.get(key) ?? 0) + (this.#pending.get(key)?.count ?? 0) + (local[i] ?? 0))
  }

  /**
   * What this replica may spend alone: a share of what was left when it last heard from Redis. A
   * replica that never heard of a counter (started during the outage) takes a share of the limit.
   */
  #outageAllowance(key: string, limit: number): number {
    const known = (this.#known.get(key) ?? 0) + (this.#pending.get(key)?.count ?? 0)
    return Math.floor(this.#share * Math.max(0, limit - known))
  }

  /**
   * Outage calls are added before anything else is counted or read, so that a reply after the
   * outage includes them (also after a slow spell, which ends without a reconnection).
   */
  async #settled(): Promise<void> {
    if (this.#settling !== undefined || this.#outage.expiresAt.size > 0 || this.#pending.size > 0) await this.#settle()
  }

  #settle(): Promise<void> {
    this.#settling ??= this.#settleOutage().finally(() => {
      this.#settling = undefined
    })
    return this.#settling
  }

  /** Adds the calls of the outage that just ended to the shared counters. */
  async #settleOutage(): Promise<void> {
    const { store, expiresAt } = this.#outage
    this.#outage = this.#newOutage()
    const keys = [...expiresAt.keys()]
    const counts = await store.read(keys)
    keys.forEach((key, i) => {
      const pending = this.#pending.get(key)
      this.#pending.set(key, { count: (pending?.count ?? 0) + (counts[i] ?? 0), expiresAt: expiresAt.get(key) ?? 0 })
    })
    for (const [key, { count, expiresAt }] of this.#pending) {
      if (expiresAt <= this.#now()) {
        this.#pending.delete(key)
        continue
      }
      try {
        this.#known.set(key, await this.#redis.quotaAdd(this.#prefix + key, this.#ttl(expiresAt), count))
        this.#pending.delete(key)
      } catch {
        // Redis failed again: kept for the next recovery.
      }
    }
  }

  #newOutage() {
    return { store: new MemoryCounterStore(this.#now), expiresAt: new Map<string, number>() }
  }

  #ttl(expiresAt: number): number {
    return Math.max(1, expiresAt - this.#now())
  }
}
