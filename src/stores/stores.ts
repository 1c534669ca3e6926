import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import type { CounterStore } from './counter-store.js'
import type { JobStore } from './job-store.js'
import { MemoryCounterStore } from './memory-counter-store.js'
import { MemoryJobStore } from './memory-job-store.js'
import { MemoryPageStore } from './memory-page-store.js'
import { MemoryRateLimiter, type RateLimiter } from './rate-limiter.js'
import type { PageStore } from './page-store.js'
import type { RedisConnection } from './redis.js'

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
  // Loaded only when configured: ioredis and the Redis stores cost an in-memory gateway about 4 MiB of RSS.
  const { openRedisStores } = await import('./redis-stores.js')
  return openRedisStores({ config, redis, logger, now, onCacheWriteError, staleMaxMs, retentionMs })
}
