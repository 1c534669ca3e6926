import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Clock } from '../clock.js'
import { failure, isCallersOwn, isGatewayError, problemKindOf, type FailureKind } from '../errors.js'
import { MemoryPageStore } from './memory-page-store.js'
import type { CacheOutcome, PageFetch, PageStore, StoredPage } from './page-store.js'
import type { RedisConnection } from './redis.js'
import { defineScripts } from './lua.js'

/** In every page key: a deploy that changes the stored shape bumps it, and reads none of the old entries. */
const FORMAT = 'v1'




interface PageCommands {
  pageWrite(...args: Array<string | number | Buffer>): Promise<number>
  pageUnlock(...args: string[]): Promise<number>
  pageRefresh(...args: Array<string | number>): Promise<number>
}

export interface RedisPageStoreOptions {
  connection: RedisConnection
  keyPrefix: string
  /** Byte budget of the pages in this process (L1). */
  memoryMaxBytes: number
  /** Byte budget of the pages in Redis (L2). */
  redisMaxBytes: number
  staleMaxMs: number
  /**
   * How long a page's lock outlives the last heartbeat of the replica loading it (one every third
   * of this): how long a lock nobody holds (its replica died, or its SET ran after the client had
   * given up on it) keeps the other replicas from loading the page.
   */
  lockTtlMs: number
  /** How long the other replicas wait for its result: the request deadline. */
  waitMs: number
  /** How often a waiting replica looks again, in case the load's message was lost. */
  pollMs: number
  /** How long a failed load answers the replicas asking for the same page, so that they do not each spend quota on it. */
  errorTtlMs: number
  clock: Clock
  /** A page could not be written to Redis (it is still served from this process). */
  onWriteError: (error: unknown) => void
}

/** A failed load while Redis holds an expired copy within the stale window: the caller decides whether to serve it. */
class SharedStale {
  constructor(
    readonly page: StoredPage,
    readonly error: unknown
  ) {}
}

interface Shared {
  page: StoredPage
  outcome: CacheOutcome
}

/**
 * Pages shared by every replica: process memory (the same lru-cache as MemoryPageStore) in front of
 * Redis, so that a hot hit never waits on Redis. A miss in memory reads Redis; a miss there takes a
 * lock per page and loads, while the other replicas wait for the result (pub/sub, and polling
 * because messages can be lost). Without Redis, it is MemoryPageStore: hits from memory,
 * coalescing in this process.
 */
export class RedisPageStore implements PageStore {
  readonly #options: RedisPageStoreOptions
  readonly #memory: MemoryPageStore
  readonly #redis: Redis & PageCommands
  readonly #subscriber: Redis
  readonly #channel: string
  readonly #waiters = new Map<string, Set<() => void>>()
  /** The stops of the heartbeats running. */
  readonly #heartbeats = new Set<() => void>()

  constructor(options: RedisPageStoreOptions) {
    this.#options = options
    this.#memory = new MemoryPageStore(options.memoryMaxBytes, options.staleMaxMs, options.clock.now)
    const client = options.connection.client
    defineScripts(client, ['pageWrite', 'pageUnlock', 'pageRefresh'])
    this.#redis = client as Redis & PageCommands
    this.#channel = `${options.keyPrefix}page:${FORMAT}:loaded`
    this.#subscriber = options.connection.duplicate()
    this.#subscriber.on('ready', () => void this.#subscriber.subscribe(this.#channel).catch(() => {}))
    this.#subscriber.on('message', (_channel: string, key: string) => {
      for (const wake of this.#waiters.get(key) ?? []) wake()
    })
  }

  async fetch(key: string, load: () => Promise<StoredPage>): Promise<PageFetch> {
    let shared: CacheOutcome | undefined
    try {
      const result = await this.#memory.fetch(key, async () => {
        const found = await this.#fetchShared(key, load)
        shared = found.outcome
        return found.page
      })
      if (result.outcome === 'stale' && result.error instanceof SharedStale) return { ...result, error: result.error.error }
      // This caller's load ran: what it found in Redis is the outcome.
      return result.outcome === 'miss' && shared !== undefined ? { ...result, outcome: shared } : result
    } catch (error) {
      if (error instanceof SharedStale) return { page: error.page, outcome: 'stale', error: error.error }
      throw error
    }
  }

  peekFresh(key: string): StoredPage | undefined {
    return this.#memory.peekFresh(key)
  }

  async close(): Promise<void> {
    for (const stop of this.#heartbeats) stop()
    this.#subscriber.disconnect()
    await this.#memory.close()
  }

  async #fetchShared(key: string, load: () => Promise<StoredPage>): Promise<Shared> {
    if (!this.#options.connection.up) return { page: await load(), outcome: 'miss' }
    const keys = this.#keys(key)
    // Listening before the first read, so that a load finishing in between is not missed.
    const waiter = this.#listen(key)
    try {
      const attempts = Math.ceil(this.#options.waitMs / this.#options.pollMs)
      for (let attempt = 0; attempt <= attempts; attempt++) {
        let held
        let token
        try {
          held = await this.#read(keys)
          if (held.page !== undefined && held.page.expiresAt > this.#options.clock.now()) return { page: held.page, outcome: attempt === 0 ? 'hit' : 'coalesced' }
          if (held.error !== undefined) throw this.#staleOr(held.page, held.error)
          token = randomUUID()
          if ((await this.#redis.set(keys.lock, token, 'PX', this.#options.lockTtlMs, 'NX')) !== 'OK') token = undefined
        } catch (error) {
          if (error instanceof SharedStale || isGatewayError(error)) throw error
          // Redis failed or is slow: this process loads alone.
          return { page: await load(), outcome: 'miss' }
        }
        if (token !== undefined) return await this.#loadAndShare(keys, load, token, held.page)
        await waiter.next(this.#options.pollMs)
      }
      throw failure('GW_DEADLINE_EXCEEDED', `Another replica's upstream call for this page did not finish within ${this.#options.waitMs} ms; retry shortly`)
    } finally {
      waiter.stop()
    }
  }

  /** Loads with the page's lock held; writes the page (or the failure) for the waiting replicas, then wakes them. */
  async #loadAndShare(keys: PageKeys, load: () => Promise<StoredPage>, token: string, expired: StoredPage | undefined): Promise<Shared> {
    const stopHeartbeat = this.#keepLock(keys.lock, token)
    try {
      // Another replica may have finished its load between the read and the lock.
      const again = await this.#read(keys).catch(() => undefined)
      if (again?.page !== undefined && again.page.expiresAt > this.#options.clock.now()) return { page: again.page, outcome: 'coalesced' }
      if (again?.error !== undefined) throw this.#staleOr(again.page, again.error)
      let page
      try {
        page = await load()
      } catch (error) {
        await this.#bestEffort(this.#markFailed(keys, error))
        throw this.#staleOr(expired, error)
      }
      await this.#bestEffort(this.#write(keys, page))
      return { page, outcome: 'miss' }
    } finally {
      stopHeartbeat()
      await this.#bestEffort(this.#redis.pageUnlock(keys.lock, token))
      await this.#bestEffort(this.#redis.publish(this.#channel, keys.name))
    }
  }

  /** Renews the page's lock while this replica loads, so that the lock's TTL can be short; returns the stop. */
  #keepLock(lock: string, token: string): () => void {
    const { lockTtlMs } = this.#options
    const cancel = this.#options.clock.setInterval(() => {
      // A missed beat is no loss yet: the lock lasts three of them.
      this.#redis.pageRefresh(lock, token, lockTtlMs).catch(() => {})
    }, lockTtlMs / 3)
    const stop = () => {
      cancel()
      this.#heartbeats.delete(stop)
    }
    this.#heartbeats.add(stop)
    return stop
  }

  async #read(keys: PageKeys): Promise<{ page?: StoredPage; error?: unknown }> {
    const [page, error] = await this.#redis.mgetBuffer(keys.page, keys.error)
    return { page: page ? decode(page) : undefined, error: error ? decodeError(error.toString()) : undefined }
  }

  async #write(keys: PageKeys, page: StoredPage): Promise<void> {
    const { clock, staleMaxMs, redisMaxBytes } = this.#options
    const now = clock.now()
    const dropAt = page.expiresAt + staleMaxMs
    await this.#redis.pageWrite(keys.page, keys.index, keys.sizes, keys.bytes, encode(page), Math.max(1, dropAt - now), dropAt, now, redisMaxBytes)
  }

  async #markFailed(keys: PageKeys, error: unknown): Promise<void> {
    // A consumer's own budget, or the export jobs', is no reason to refuse another consumer the page.
    if (!isGatewayError(error) || isCallersOwn(error)) return
    const { code, message, upstreamCode, logId, retryAfterSeconds } = error
    await this.#redis.set(keys.error, JSON.stringify({ code, message, upstreamCode, logId, retryAfterSeconds }), 'PX', this.#options.errorTtlMs)
  }

  async #bestEffort(write: Promise<unknown>): Promise<void> {
    try {
      await write
    } catch (error) {
      this.#options.onWriteError(error)
    }
  }

  #staleOr(page: StoredPage | undefined, error: unknown): unknown {
    return page !== undefined && this.#options.clock.now() < page.expiresAt + this.#options.staleMaxMs ? new SharedStale(page, error) : error
  }

  #keys(name: string): PageKeys {
    const base = `${this.#options.keyPrefix}page:${FORMAT}:`
    return {
      name,
      page: `${base}${name}`,
      lock: `${base}lock:${name}`,
      error: `${base}error:${name}`,
      index: `${base}index`,
      sizes: `${base}sizes`,
      bytes: `${base}bytes`
    }
  }

  /** Wakes `next()` early when a replica says it loaded the page. */
  #listen(name: string): { next(ms: number): Promise<void>; stop(): void } {
    let woken = false
    let wake = () => {
      woken = true
    }
    const listener = () => wake()
    const listeners = this.#waiters.get(name) ?? new Set()
    listeners.add(listener)
    this.#waiters.set(name, listeners)
    return {
      next: (ms) =>
        new Promise<void>((resolve) => {
          if (woken) {
            woken = false
            resolve()
            return
          }
          const cancel = this.#options.clock.setTimeout(() => done(), ms)
          const done = () => {
            cancel()
            wake = () => {
              woken = true
            }
            resolve()
          }
          wake = done
        }),
      stop: () => {
        listeners.delete(listener)
        if (listeners.size === 0) this.#waiters.delete(name)
      }
    }
  }
}

interface PageKeys {
  name: string
  page: string
  lock: string
  error: string
  index: string
  sizes: string
  bytes: string
}

/** The page's fields as JSON, a newline, then the body's bytes as they are sent. */
function encode({ body, ...meta }: StoredPage): Buffer {
  return Buffer.concat([Buffer.from(JSON.stringify(meta) + '\n'), body])
}

function decode(value: Buffer): StoredPage {
  const newline = value.indexOf(0x0a)
  return { ...(JSON.parse(value.subarray(0, newline).toString()) as Omit<StoredPage, 'body'>), body: value.subarray(newline + 1) }
}

function decodeError(value: string): unknown {
  const { code, message, ...details } = JSON.parse(value) as { code: string; message: string; upstreamCode?: string; logId?: string; retryAfterSeconds?: number }
  return failure(problemKindOf(code) === undefined ? 'GW_UPSTREAM_ERROR' : (code as FailureKind), message, details)
}
