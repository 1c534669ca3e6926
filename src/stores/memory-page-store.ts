import { LRUCache } from 'lru-cache'
import type { CacheOutcome, PageFetch, PageStore, StoredPage } from './page-store.js'

/**
 * Heap an entry holds beside the bytes of its body, key and ETag, from heap snapshots (Node 20): the
 * page object and its two timestamps (96 B), the Buffer and its ArrayBuffer (184 B), two string
 * headers (32 B), and lru-cache's key map and arrays, 100-170 B with their growth slack (the top taken).
 */
const ENTRY_OVERHEAD_BYTES = 480

/** What a cached page costs this process (the budget counts this): its body, key and ETag, and the objects around them. */
export function pageEntryBytes(key: string, page: StoredPage): number {
  return page.body.byteLength + key.length + page.etag.length + ENTRY_OVERHEAD_BYTES
}

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
      sizeCalculation: (page, key) => pageEntryBytes(key, page),
      // A failed reload keeps the expired page, for the next caller's stale fallback too.
      noDeleteOnFetchRejection: true,
      fetchMethod: async (_key, _stale, { context, options }) => {
        const page = ownCopy(await context())
        options.ttl = Math.max(1, page.expiresAt + staleMaxMs - now())
        return page
      }
    })
  }

  async fetch(key: string, load: () => Promise<StoredPage>): Promise<PageFetch> {
    const held = this.#cache.peek(key, { allowStale: true })
    const status: LRUCache.Status<string, StoredPage> = {}
    try {
      const expired = held !== undefined && held.expiresAt <= this.#now()
      // A new entry keeps a flat copy of the key: the caller's is usually a tree of concatenated strings.
      const page = await this.#cache.fetch(held === undefined ? flatCopy(key) : key, { context: load, status, forceRefresh: expired })
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

/**
 * The page as the cache holds it, in memory of its own: a body that is a view into a larger buffer
 * (Node's pool, a Redis reply) would keep all of that alive, and an ETag built by concatenation is a
 * tree of strings; the budget counts neither.
 */
function ownCopy(page: StoredPage): StoredPage {
  return { ...page, body: ownBytes(page.body), etag: flatCopy(page.etag) }
}

function ownBytes(body: Buffer): Buffer {
  if (body.byteOffset === 0 && body.buffer.byteLength === body.byteLength) return body
  // Not Buffer.from(): a small copy would be cut from Node's pool.
  const copy = Buffer.allocUnsafeSlow(body.byteLength)
  body.copy(copy)
  return copy
}

/** A flat string of its own, where V8 keeps a concatenation as a tree of 32-byte ConsStrings over the pieces. */
function flatCopy(text: string): string {
  return JSON.parse(JSON.stringify(text)) as string
}
