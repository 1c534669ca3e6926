import type { Config } from '../config.js'
import { RedisConnection } from './redis.js'
import { RedisCounterStore } from './redis-counter-store.js'
import { RedisJobStore } from './redis-job-store.js'
import { RedisPageStore } from './redis-page-store.js'
import { RedisRateLimiter } from './redis-rate-limiter.js'
import type { Stores, StoresOptions } from './stores.js'

/** How often a replica waiting for another's load looks at Redis again, in case the pub/sub message was lost. */
const POLL_MS = 100
/** How long a failed load answers the others: long enough for the waiters of that load, short enough not to hide a recovery. */
const ERROR_MARKER_MS = 1000

export interface RedisStoresOptions extends StoresOptions {
  redis: NonNullable<Config['redis']>
  staleMaxMs: number
  retentionMs: number
}

/** The stores on Redis (REDIS_URL), with the in-process L1 of pages in front. */
export async function openRedisStores({ config, redis, logger, clock, onCacheWriteError, staleMaxMs, retentionMs }: RedisStoresOptions): Promise<Stores> {
  const connect = (url: string, role: string) =>
    new RedisConnection({ url, role, connectTimeoutMs: redis.connectTimeoutMs, commandTimeoutMs: redis.commandTimeoutMs, logger })
  const state = connect(redis.url, 'state')
  const cache = redis.cacheUrl === undefined ? state : connect(redis.cacheUrl, 'cache')
  const connections = [...new Set([state, cache])]
  await Promise.all(connections.map((connection) => connection.ready(redis.connectTimeoutMs)))

  const pages = new RedisPageStore({
    connection: cache,
    keyPrefix: redis.keyPrefix,
    memoryMaxBytes: config.cache.maxBytes,
    redisMaxBytes: redis.cacheMaxBytes,
    staleMaxMs,
    // Three heartbeats, each answered or timed out before the next: a slow command costs a beat, not
    // the lock, and a lock nobody holds frees its page within 1.5 s (by default), far inside the deadline.
    lockTtlMs: 3 * Math.max(redis.commandTimeoutMs, POLL_MS),
    waitMs: config.requestDeadlineMs,
    pollMs: POLL_MS,
    errorTtlMs: ERROR_MARKER_MS,
    clock,
    onWriteError: onCacheWriteError
  })
  return {
    counters: new RedisCounterStore({ connection: state, keyPrefix: redis.keyPrefix, outageShare: redis.outageBudgetShare, now: clock.now }),
    pages,
    jobs: new RedisJobStore({ connection: state, keyPrefix: redis.keyPrefix, retentionMs }),
    redis: connections,
    rateLimiter: new RedisRateLimiter({ connection: state, keyPrefix: `${redis.keyPrefix}rate-limit:`, limit: config.rateLimitPerMinute, now: clock.now }),
    async close() {
      await pages.close()
      await Promise.all(connections.map((connection) => connection.close()))
    }
  }
}
