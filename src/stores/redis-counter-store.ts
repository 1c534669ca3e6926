import { randomUUID } from 'node:crypto'
import { failure } from '../errors.js'
import type { CounterStore, Limit } from './counter-store.js'
import { UNAVAILABLE_RETRY_SECONDS, type RedisConnection } from './redis.js'
import { defineScripts } from './lua.js'

/*
 * Each replica keeps its own tally of each counter (the calls it made today) and writes it into a
 * hash beside the counter as an absolute value that only goes up; the counter is the sum of those
 * tallies (kept by the script from each tally's increase) or the floor raise() set. A write that
 * timed out and runs later, or one sent again, cannot count twice, and a Redis restarted empty gets
 * the day back as soon as the replicas write their tallies again. Until they all have (or for good,
 * if one stopped meanwhile), each replica checks limits against at least what it knew was spent.
 * The script may run when Redis is out of memory (allow-oom): under `noeviction` a full Redis
 * refuses ordinary writes, and the day's count must still go up, or the budget is overrun.
 * Counters expire relative to the app's clock (PEXPIRE, not PEXPIREAT), so the day a counter
 * belongs to is the app's, as in memory.
 */

interface QuotaCommands {
  quotaSync(...args: Array<string | number>): Promise<[number[], number[], number[], number[]]>
}

export interface RedisCounterStoreOptions {
  connection: RedisConnection
  keyPrefix: string
  /** Share of a budget's last known remainder this replica may spend alone during one outage. */
  outageShare: number
  now: () => number
}

interface Counter {
  expiresAt: number
  /** Calls this replica made today on this counter, reserved in Redis or alone. */
  tally: number
  /** The least value raise() asked for, written again with every script that names the counter. */
  floor: number
  /**
   * The counter's value when Redis last answered (never lowered: a day's count only goes down when
   * Redis lost it), and this replica's tally in Redis then.
   */
  heard: { value: number; tally: number }
}

interface Reservation {
  limits: ReadonlyArray<Limit & { counter: Counter }>
  /** The refusing position or -1, or 'alone' when Redis did not answer. */
  resolve: (outcome: number | 'alone') => void
}

/**
 * Counters shared by every replica, reserved by one Lua script so that no two replicas both take
 * the last unit. A replica sends one script at a time, with every reservation that arrived
 * meanwhile, so that the tallies it writes are absolute. While Redis is unavailable each replica
 * spends at most `outageShare` of what was left of each budget when it last heard from Redis; its
 * tallies carry those calls to the shared counters when Redis answers again.
 */
export class RedisCounterStore implements CounterStore {
  readonly #connection: RedisConnection
  readonly #redis: QuotaCommands
  readonly #prefix: string
  readonly #share: number
  readonly #now: () => number
  readonly #replica = randomUUID()
  readonly #counters = new Map<string, Counter>()
  /** Reservations that arrived while a script was in flight: they go in the next one. */
  #queue: Reservation[] = []
  #sending = false
  /**
   * While Redis is stalled (connected, but a script timed out): the sync that asks it again. No
   * reservation goes to Redis meanwhile, so a stall leaves no late reservation behind, only late
   * syncs, which write what is already true.
   */
  #probe: Promise<void> | undefined

  constructor({ connection, keyPrefix, outageShare, now }: RedisCounterStoreOptions) {
    this.#connection = connection
    this.#prefix = keyPrefix
    this.#share = outageShare
    this.#now = now
    const client = connection.client
    defineScripts(client, ['quotaSync'])
    this.#redis = client as unknown as QuotaCommands
    // A Redis that restarted empty has lost the day: write every tally again, before others spend it.
    connection.onRecover(() => void this.#sync(this.#live(), []).catch(() => {}))
  }

  async reserve(limits: readonly Limit[], expiresAt: number): Promise<number> {
    const counted = limits.map((limit) => ({ ...limit, counter: this.#counter(limit.key, expiresAt) }))
    const outcome = this.#available
      ? await new Promise<number | 'alone'>((resolve) => {
          this.#queue.push({ limits: counted, resolve })
          if (!this.#sending) void this.#send()
        })
      : 'alone'
    return outcome === 'alone' ? this.#reserveAlone(counted) : outcome
  }

  async raise(key: string, value: number, expiresAt: number): Promise<void> {
    const counter = this.#counter(key, expiresAt)
    counter.floor = Math.max(counter.floor, value)
    if (!this.#available) return
    try {
      await this.#sync([key], [])
    } catch {
      // Kept in the floor: the reservations counted alone respect it, and the next script writes it.
    }
  }

  async read(keys: readonly string[]): Promise<number[]> {
    // A stalled Redis is asked once more, so that a report right after the stall is the shared count.
    await this.#probe
    if (this.#available) {
      try {
        return (await this.#sync(keys, [])).values
      } catch {
        // Reported from what this replica knows.
      }
    }
    return keys.map((key) => {
      const counter = this.#counters.get(key)
      return counter === undefined ? 0 : this.#estimate(counter)
    })
  }

  /** Sends the queued reservations, one script at a time, until none is left. */
  async #send(): Promise<void> {
    this.#sending = true
    while (this.#queue.length > 0) {
      const batch = this.#queue
      this.#queue = []
      const keys = [...new Set(batch.flatMap(({ limits }) => limits.map(({ key }) => key)))]
      try {
        const { refused } = await this.#sync(keys, batch)
        batch.forEach(({ resolve }, i) => resolve(refused[i] ?? 0))
      } catch {
        // Unavailable or slow: these reservations, and those that waited behind them, are counted alone.
        for (const { resolve } of [...batch, ...this.#queue.splice(0)]) resolve('alone')
      }
    }
    this.#sending = false
  }

  /** Whether to send Redis anything now: it is connected and not known to be stalled. */
  get #available(): boolean {
    return this.#connection.up && this.#probe === undefined
  }

  /** After a timeout: syncs every counter, one script at a time, until Redis answers in time. */
  #reprobe(): void {
    if (this.#probe !== undefined || !this.#connection.up) return
    this.#probe = this.#sync(this.#live(), []).then(
      () => {
        this.#probe = undefined
        // Also the calls made alone while this sync was in flight.
        void this.#sync(this.#live(), []).catch(() => {})
      },
      (err: unknown) => {
        this.#probe = undefined
        if (isTimeout(err)) this.#reprobe()
      }
    )
  }

  /**
   * Writes this replica's tallies and floors of `keys`, then makes `reservations` (each naming only
   * counters of `keys`), and learns the values of `keys`.
   */
  async #sync(keys: readonly string[], reservations: readonly Reservation[]): Promise<{ values: number[]; refused: number[] }> {
    const counters = keys.map((key) => this.#counters.get(key))
    const index = new Map(keys.map((key, i) => [key, i + 1]))
    let reply: [number[], number[], number[], number[]]
    try {
      reply = await this.#redis.quotaSync(
        2 * keys.length,
        ...keys.flatMap((key) => [this.#prefix + key, `${this.#prefix}tallies:${key}`]),
        this.#replica,
        // A counter this replica never counted on is only read: nothing to write, nothing expires.
        ...counters.flatMap((counter) =>
          counter === undefined ? [1, 0, 0, 0] : [this.#ttl(counter.expiresAt), counter.tally, counter.floor, this.#estimate(counter)]
        ),
        ...reservations.flatMap(({ limits }) => [limits.length, ...limits.flatMap(({ key, limit }) => [index.get(key) ?? 0, limit])])
      )
    } catch (err) {
      if (isTimeout(err)) this.#reprobe()
      throw err
    }
    const [values, tallies, ttls, refused] = reply
    reservations.forEach(({ limits }, i) => {
      if (refused[i] === -1) for (const { counter } of limits) counter.tally++
    })
    keys.forEach((key, i) => {
      // A counter only read is remembered too, until it expires, for the reports made during an outage.
      const ttl = ttls[i] ?? -2
      const counter = counters[i] ?? (ttl > 0 ? this.#counter(key, this.#now() + ttl) : undefined)
      if (counter !== undefined) counter.heard = { value: Math.max(values[i] ?? 0, this.#estimate(counter)), tally: tallies[i] ?? 0 }
    })
    return { values, refused }
  }

  /**
   * Counts a reservation in this replica alone: refused (the budget's answer) when a counter is at its
   * limit as last heard; throws GW_SHARED_STATE_UNAVAILABLE when the share of what was left then is
   * spent, since the budget itself may well not be. A replica that never heard of a counter
   * (started during the outage) takes a share of the limit.
   */
  #reserveAlone(limits: Reservation['limits']): number {
    const refused = limits.findIndex(({ limit, counter }) => this.#estimate(counter) + 1 > limit)
    if (refused !== -1) return refused
    const shareSpent = limits.some(({ limit, counter }) => {
      const left = limit - Math.max(counter.heard.value, counter.floor)
      return counter.tally - counter.heard.tally + 1 > Math.floor(this.#share * Math.max(0, left))
    })
    if (shareSpent) {
      throw failure('GW_SHARED_STATE_UNAVAILABLE', 'The gateway cannot reach its shared state (Redis) and has made its share of upstream calls alone; try again in a few seconds', {
        retryAfterSeconds: UNAVAILABLE_RETRY_SECONDS
      })
    }
    for (const { counter } of limits) counter.tally++
    return -1
  }

  /** The counter's value as this replica knows it: as last heard, plus the calls it made since. */
  #estimate({ heard, floor, tally }: Counter): number {
    return Math.max(heard.value, floor) + Math.max(0, tally - heard.tally)
  }

  /** The counter of `key`, made if new; it is kept until `expiresAt` at least. */
  #counter(key: string, expiresAt: number): Counter {
    let counter = this.#counters.get(key)
    if (counter === undefined) {
      this.#live()
      counter = { expiresAt, tally: 0, floor: 0, heard: { value: 0, tally: 0 } }
      this.#counters.set(key, counter)
    }
    counter.expiresAt = Math.max(counter.expiresAt, expiresAt)
    return counter
  }

  /** The keys of today's counters; those of past days are dropped. */
  #live(): string[] {
    for (const [key, { expiresAt }] of this.#counters) if (expiresAt <= this.#now()) this.#counters.delete(key)
    return [...this.#counters.keys()]
  }

  #ttl(expiresAt: number): number {
    return Math.max(1, expiresAt - this.#now())
  }
}

/** ioredis's rejection of a command that got no reply within commandTimeout: Redis is connected but stalled. */
function isTimeout(err: unknown): boolean {
  return err instanceof Error && err.message === 'Command timed out'
}
