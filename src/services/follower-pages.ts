import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { FollowersPage } from '../schemas/followers.js'
import type { PageFetch, PageStore, StoredPage } from '../stores/page-store.js'
import type { ResearchApi } from '../upstream/research-api.js'

export interface FollowersQuery {
  /** Lower-case, so that each spelling of a user is one cache entry. */
  username: string
  maxCount: number
  /** Unix seconds; omitted asks for the newest followers. */
  cursor?: number
}

export interface FollowerPagesOptions {
  api: ResearchApi
  store: PageStore
  ttlLatestSeconds: number
  ttlHistorySeconds: number
}

/**
 * Pages of a user's followers, each fetched from TikTok once per distinct (username, max_count,
 * cursor) while cached. A page without a cursor (or with one not yet in the past) is "the newest
 * followers" and changes; a page at a past cursor is history and keeps much longer.
 */
export class FollowerPages {
  readonly #options: FollowerPagesOptions

  constructor(options: FollowerPagesOptions) {
    this.#options = options
  }

  get(query: FollowersQuery, log?: FastifyBaseLogger): Promise<PageFetch> {
    const { username, maxCount, cursor } = query
    const key = `followers:${username}:${maxCount}:${cursor ?? 'latest'}`
    return this.#options.store.fetch(key, () => this.#load(username, maxCount, cursor, log))
  }

  async #load(username: string, maxCount: number, cursor: number | undefined, log?: FastifyBaseLogger): Promise<StoredPage> {
    const data = await this.#options.api.queryUserFollowers({ username, max_count: maxCount, cursor }, log)
    const page: FollowersPage = {
      username,
      followers: data.user_followers.map(({ username, display_name }) => ({ username, display_name })),
      cursor: data.cursor,
      has_more: data.has_more
    }
    const body = Buffer.from(JSON.stringify(page))
    const now = Date.now()
    const history = cursor !== undefined && cursor * 1000 < now
    const ttlSeconds = history ? this.#options.ttlHistorySeconds : this.#options.ttlLatestSeconds
    return {
      body,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
      expiresAt: now + ttlSeconds * 1000,
      nextCursor: data.has_more ? data.cursor : undefined
    }
  }
}
