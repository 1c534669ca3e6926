import { LRUCache } from 'lru-cache'
import type { CacheOutcome, PageFetch, PageStore, StoredPage } from './page-store.js'

/** Rough bytes an entry costs beyond its body (key, headers, bookkeeping), so many tiny pages still count. */
const ENTRY_OVERHEAD_BYTES = 256

/**
 * In-process pages bounded by a byte budget; lru-cache's fetch() coalesces concurrent loads of a
 * key. An entry lives `staleMaxMs` past its page's expiry, to be served stale if a reload fails.
 */
export class MemoryPageStore implements PageStore {
  readonly #cache: LRUCache<string, StoredPage, () => Promise<StoredPage>>
  readonly #staleMaxMs: number
  readonly #now: () => number

  constructor(maxBytes: number, staleMaxMs: number, now: () => number) {
    this.#staleMaxMs = staleMaxMs
    this.#now = now
    this.#cache = new LRUCache({
      maxSize: maxBytes,
      // TTLs run on the app's clock, so that tests can move it and nothing reads the real time.
      perf: { now },
      sizeCalculation: (page, key) => page.body.length + key.length + ENTRY_OVERHEAD_BYTES,
      // A failed reload keeps the expired page, for the next caller's stale fallback too.
      noDeleteOnFetchRejection: true,
      fetchMethod: async (_key, _stale, { context, options }) => {
        const page = await context()
        options.ttl = Math.max(1, page.expiresAt + staleMaxMs - now())
        return page
      }
    })
  }

  async fetch(key: string, load: () => Promise<StoredPage>): Promise<PageFetch> {
    const held = this.#cache.peek(key, { allowStale: true })
    const status: LRUCache.Status<string, StoredPage> = {}
    try {
      const page = await this.#cache.fetch(key, { context: load, status, forceRefresh: held !== undefined && held.expiresAt <= this.#now() })
      // fetchMethod never resolves undefined, so a settled fetch always has a page.
      return { page: page as StoredPage, outcome: outcomeOf(status.fetch) }
    } catch (error) {
      const stale = this.#cache.peek(key, { allowStale: true })
      if (stale !== undefined && this.#now() < stale.expiresAt + this.#staleMaxMs) return { page: stale, outcome: 'stale', error }
      throw error
    }
  }

  peekFresh(key: string): StoredPage | undefined {
    const page = this.#cache.get(key)
    return page !== undefined && page.expiresAt > this.#now() ? page : undefined
  }

  async close(): Promise<void> {
    this.#cache.clear()
  }
}

function outcomeOf(fetch: LRUCache.Status<string, StoredPage>['fetch']): CacheOutcome {
  if (fetch === 'hit') return 'hit'
  if (fetch === 'inflight') return 'coalesced'
  return 'miss'
}
