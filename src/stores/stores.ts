import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import type { CounterStore } from './counter-store.js'
import type { JobStore } from './job-store.js'
import type { RateLimiter } from './rate-limiter.js'
import type { PageStore } from './page-store.js'
import type { RedisConnection } from './redis.js'

/** What the gateway keeps, in memory or in Redis: picked by open-stores.ts, the Redis ones built by redis-stores.ts. */
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
  clock: Clock
  onCacheWriteError: (error: unknown) => void
}
