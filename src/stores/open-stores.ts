import { MemoryCounterStore } from './memory-counter-store.js'
import { MemoryJobStore } from './memory-job-store.js'
import { MemoryPageStore } from './memory-page-store.js'
import { MemoryRateLimiter } from './rate-limiter.js'
import type { Stores, StoresOptions } from './stores.js'

/** The one place that picks the stores: in process memory, or in Redis when REDIS_URL is set. */
export async function openStores({ config, logger, clock, onCacheWriteError }: StoresOptions): Promise<Stores> {
  const staleMaxMs = config.cache.staleMaxAgeSeconds * 1000
  const retentionMs = config.exports.retentionSeconds * 1000
  const { redis } = config
  if (redis === undefined) {
    const { now } = clock
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
  return openRedisStores({ config, redis, logger, clock, onCacheWriteError, staleMaxMs, retentionMs })
}
