import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import type { CounterStore } from './counter-store.js'
import type { JobStore } from './job-store.js'
import { MemoryCounterStore } from './memory-counter-store.js'
import { MemoryJobStore } from './memory-job-store.js'
import { MemoryPageStore } from './memory-page-store.js'
import { MemoryRateLimiter, type RateLimiter } from './rate-limiter.js'
import type { PageStore } from './page-store.js'
import { RedisConnection } from './redis.js'
import { RedisCounterStore } from './redis-counter-store.js'
import { RedisJobStore } from './redis-job-store.js'
import { RedisPageStore } from './redis-page-store.js'
import { RedisRateLimiter } from './redis-rate-limiter.js'

/** How often a replica waiting for another's load looks at Redis again, in case the pub/sub message was lost. */
const POLL_MS = 100
/** How long a failed load answers the others: long enough for the waiters of that load, short enough not to hide a recovery. */
const ERROR_MARKER_MS = 1000

export interface Stores {
  counters: CounterStore
  pages: PageStore
  /** Export jobs: in this process (gone after a restart), or in Redis beside the quota counters (never on the cache Redis, which may evict). */
  jobs: JobStore
  /** The Redis connections (none in memory), for readiness and metrics. */
  redis: RedisConnection[]
  /** Each consumer's requests a minute: in this process, or shared across replicas in Redis. */
  rateLimiter: RateLimiter
  close(): Promise<void>
}

export interface StoresOptions {
  config: Config
  logger: FastifyBaseLogger
  now: () => number
  onCacheWriteError: (error: unknown) => void
}

/** The one place that picks the stores: in process memory, or in Redis when REDIS_URL is set. */
export async function openStores({ config, logger, now, onCacheWriteError }: StoresOptions): Promise<Stores> {
  const staleMaxMs = config.cache.staleMaxAgeSeconds * 1000
  const retentionMs = config.exports.retentionSeconds * 1000
  const { redis } = config
  if (redis === undefined) {
    const pages = new MemoryPageStore(config.cache.maxBytes, staleMaxMs, now)
    return {
      counters: new MemoryCounterStore(now),
      pages,
      jobs: new MemoryJobStore(retentionMs, now),
      rateLimiter: new MemoryRateLimiter(config.rateLimitPerMinute, now),
      redis: [],
      close: () => pages.close()
    }
  }

  const connect = (url: string, role: string) =>
    new RedisConnection({ url, role, connectTimeoutMs: redis.connectTimeoutMs, commandTimeoutMs: redis.commandTimeoutMs, logger })
  const state = connect(redis.url, 'state')
  const cache = redis.cacheUrl === undefined ? state : connect(redis.cacheUrl, 'cache')
  const connections = [...new Set([state, cache])]
  await Promise.all(connections.map((connection) => connection.ready(redis.connectTimeoutMs)))

  const { upstream } = config
  const pages = new RedisPageStore({
    connection: cache,
    keyPrefix: redis.keyPrefix,
    memoryMaxBytes: config.cache.maxBytes,
    redisMaxBytes: redis.cacheMaxBytes,
    staleMaxMs,
    // Every attempt timing out, plus a Retry-After waited out: past that the loading replica is gone.
    lockTtlMs: (upstream.connectTimeoutMs + upstream.timeoutMs) * (upstream.retries + 1) + upstream.retryAfterMaxWaitSeconds * 1000,
    waitMs: config.requestDeadlineMs,
    pollMs: POLL_MS,
    errorTtlMs: ERROR_MARKER_MS,
    now,
    onWriteError: onCacheWriteError
  })
  return {
    counters: new RedisCounterStore({ connection: state, keyPrefix: redis.keyPrefix, outageShare: redis.outageBudgetShare, now }),
    pages,
    jobs: new RedisJobStore({ redis: state.client, prefix: redis.keyPrefix, retentionMs }),
    redis: connections,
    rateLimiter: new RedisRateLimiter({ connection: state, keyPrefix: `${redis.keyPrefix}rate-limit:`, limit: config.rateLimitPerMinute, now }),
    async close() {
      await pages.close()
      await Promise.all(connections.map((connection) => connection.close()))
    }
  }
}
