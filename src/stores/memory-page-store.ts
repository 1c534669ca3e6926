import { LRUCache } from 'lru-cache'
import type { CacheOutcome, PageFetch, PageStore, StoredPage } from './page-store.js'

/** Rough bytes an entry costs beyond its body (key, headers, bookkeeping), so many tiny pages still count. */
const ENTRY_OVERHEAD_BYTES = 256

/** In-process pages bounded by a byte budget; lru-cache's fetch() coalesces concurrent loads of a key. */
export class MemoryPageStore implements PageStore {
  readonly #cache: LRUCache<string, StoredPage, () => Promise<StoredPage>>

  constructor(maxBytes: number) {
    this.#cache = new LRUCache({
      maxSize: maxBytes,
      sizeCalculation: (page, key) => page.body.length + key.length + ENTRY_OVERHEAD_BYTES,
      fetchMethod: async (_key, _stale, { context, options }) => {
        const page = await context()
        options.ttl = Math.max(1, page.expiresAt - Date.now())
        return page
      }
    })
  }

  async fetch(key: string, load: () => Promise<StoredPage>): Promise<PageFetch> {
    const status: LRUCache.Status<string, StoredPage> = {}
    const page = await this.#cache.fetch(key, { context: load, status })
    // fetchMethod never resolves undefined, so a settled fetch always has a page.
    return { page: page as StoredPage, outcome: outcomeOf(status.fetch) }
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
