/** A response as the gateway serves it: bytes ready to send, so a cache hit does no JSON work. */
export interface StoredPage {
  body: Buffer
  etag: string
  /** Epoch milliseconds when the page was fetched. */
  storedAt: number
  /** Epoch milliseconds after which the page must be fetched again. */
  expiresAt: number
  /** The cursor of the next page, when the upstream said there is one. */
  nextCursor?: number
}

/**
 * hit: served from the store; coalesced: waited for another caller's load; miss: this caller
 * loaded it; stale: loading failed and an expired page was kept.
 */
export type CacheOutcome = 'hit' | 'coalesced' | 'miss' | 'stale'

export interface PageFetch {
  page: StoredPage
  outcome: CacheOutcome
  /** With a stale page: why loading failed, for the caller to decide whether stale may be served. */
  error?: unknown
}

/**
 * Where pages live between requests. Implementations must load a missing or expired key once
 * however many callers ask for it at the same time, and keep an expired page for a while after
 * its `expiresAt` to return as `stale` when loading it again fails.
 */
export interface PageStore {
  fetch(key: string, load: () => Promise<StoredPage>): Promise<PageFetch>
  /** A page that is still fresh in this process's memory, synchronously; undefined otherwise (the hot path of a hit). */
  peekFresh(key: string): StoredPage | undefined
  close(): Promise<void>
}
