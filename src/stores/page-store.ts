/** A response as the gateway serves it: bytes ready to send, so a cache hit does no JSON work. */
export interface StoredPage {
  body: Buffer
  etag: string
  /** Epoch milliseconds after which the page must be fetched again. */
  expiresAt: number
  /** The cursor of the next page, when the upstream said there is one. */
  nextCursor?: number
}

/** hit: served from the store; coalesced: waited for another caller's load; miss: this caller loaded it. */
export type CacheOutcome = 'hit' | 'coalesced' | 'miss'

export interface PageFetch {
  page: StoredPage
  outcome: CacheOutcome
}

/**
 * Where pages live between requests. Implementations must load a missing key once however many
 * callers ask for it at the same time, and keep a page until its `expiresAt`.
 */
export interface PageStore {
  fetch(key: string, load: () => Promise<StoredPage>): Promise<PageFetch>
  close(): Promise<void>
}
