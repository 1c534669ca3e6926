import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { failure, type GatewayError } from '../errors.js'
import type { FollowersPage } from '../schemas/followers.js'
import type { PageFetch, PageStore, StoredPage } from '../stores/page-store.js'
import type { ResearchApi } from '../upstream/research-api.js'
import type { Quota } from './quota.js'

export interface FollowersQuery {
  /** Lower-case, so that each spelling of a user is one cache entry. */
  username: string
  maxCount: number
  /** Unix seconds; omitted asks for the newest followers. */
  cursor?: number
}

export interface Caller {
  consumer: string
  log: FastifyBaseLogger
}

export interface FollowerPagesOptions {
  api: ResearchApi
  store: PageStore
  quota: Quota
  ttlLatestSeconds: number
  ttlHistorySeconds: number
  deadlineMs: number
  now: () => number
}

export interface FollowersResult extends PageFetch {
  /** Seconds since the page came from TikTok. */
  ageSeconds: number
  /** Seconds the page stays fresh; 0 once expired. */
  freshSeconds: number
}

/**
 * Pages of a user's followers, each fetched from TikTok once per distinct (username, max_count,
 * cursor) while cached. A page without a cursor (or with one not yet in the past) is "the newest
 * followers" and changes; a page at a past cursor is history and keeps much longer. Each call to
 * TikTok is charged to the team's and the calling consumer's daily budget.
 */
export class FollowerPages {
  readonly #options: FollowerPagesOptions

  constructor(options: FollowerPagesOptions) {
    this.#options = options
  }

  async get(query: FollowersQuery, caller: Caller): Promise<FollowersResult> {
    const { username, maxCount, cursor } = query
    const key = `followers:${username}:${maxCount}:${cursor ?? 'latest'}`
    const result = await withDeadline(this.#options.store.fetch(key, () => this.#load(query, caller)), this.#options.deadlineMs)
    if (result.outcome === 'stale' && !servesStale(result.error)) throw result.error
    if (result.outcome === 'stale') caller.log.warn({ err: result.error }, 'TikTok failed; serving a stale page')
    const now = this.#options.now()
    return {
      ...result,
      ageSeconds: Math.floor((now - result.page.storedAt) / 1000),
      freshSeconds: Math.max(0, Math.ceil((result.page.expiresAt - now) / 1000))
    }
  }

  async #load({ username, maxCount, cursor }: FollowersQuery, { consumer, log }: Caller): Promise<StoredPage> {
    const { api, quota } = this.#options
    let data
    try {
      data = await api.queryUserFollowers({ username, max_count: maxCount, cursor }, { log, beforeAttempt: () => quota.reserve(consumer) })
    } catch (err) {
      // TikTok itself says the day is spent (the gateway's own count may differ): stop calling until the reset.
      if ((err as GatewayError).upstreamCode === 'daily_quota_limit_exceeded') await quota.markExhausted()
      throw err
    }
    const page: FollowersPage = {
      username,
      followers: data.user_followers.map(({ username, display_name }) => ({ username, display_name })),
      cursor: data.cursor,
      has_more: data.has_more
    }
    const body = Buffer.from(JSON.stringify(page))
    const now = this.#options.now()
    const history = cursor !== undefined && cursor * 1000 < now
    const ttlSeconds = history ? this.#options.ttlHistorySeconds : this.#options.ttlLatestSeconds
    return {
      body,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
      storedAt: now,
      expiresAt: now + ttlSeconds * 1000,
      nextCursor: data.has_more ? data.cursor : undefined
    }
  }
}

/** An old page beats no page when TikTok is down, slow, rate-limiting or out of quota; not when the user is gone. */
function servesStale(error: unknown): boolean {
  const status = (error as GatewayError).statusCode
  return status === 429 || status >= 500
}

/** Gives up waiting after `ms`; the load itself goes on and fills the cache for the next caller. */
async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(failure('GW_DEADLINE_EXCEEDED', `No answer within the gateway's ${ms} ms deadline; retry shortly`)), ms)
  })
  try {
    return await Promise.race([work, deadline])
  } finally {
    clearTimeout(timer)
  }
}
