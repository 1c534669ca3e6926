import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import { failure, isGatewayError, traitsOf } from '../errors.js'
import type { FollowersPage } from '../schemas/followers.js'
import type { FollowingPage } from '../schemas/following.js'
import type { Relation } from '../schemas/export-jobs.js'
import type { Account } from '../schemas/followers.js'
import type { UserProfile } from '../schemas/profile.js'
import type { CacheOutcome, PageFetch, PageStore, StoredPage } from '../stores/page-store.js'
import type { CallContext, ResearchApi } from '../upstream/research-api.js'
import { USER_INFO_FIELDS } from '../upstream/wire.js'
import type { Quota } from './quota.js'

export interface ListQuery {
  /** Lower-case, so that each spelling of a user is one cache entry. */
  username: string
  maxCount: number
  /** Unix seconds; omitted asks for the newest accounts. */
  cursor?: number
}

export interface Caller {
  consumer: string
  log: FastifyBaseLogger
  /** Set when an export job asks: its upstream calls also count against the export budget. */
  exportJob?: string
}

export interface PageOptions {
  /**
   * Whether REQUEST_DEADLINE_MS bounds the wait (the default). An export's later pages are not
   * bounded by it: each keeps its own upstream timeout, and a long healthy export goes on.
   */
  deadline?: boolean
}

/** One page of a list, as the exports read it. */
export interface AccountPage {
  accounts: Account[]
  /** TikTok's cursor right after the page's last account. */
  cursor: number
  hasMore: boolean
  outcome: CacheOutcome
}

/** TikTok's largest page: the fewest calls per account, and the page every export shares through the cache. */
export const EXPORT_PAGE_SIZE = 100

export interface PagesOptions {
  api: ResearchApi
  store: PageStore
  quota: Quota
  ttlLatestSeconds: number
  ttlHistorySeconds: number
  ttlProfileSeconds: number
  deadlineMs: number
  clock: Clock
}

/** One cacheable answer: where it is kept, how long it stays fresh, and how to get it from TikTok. */
interface PageSpec {
  key: string
  ttlSeconds: number
  /** The answer's JSON body and, for a list, the cursor of its next page. */
  fetch: (context: CallContext) => Promise<{ body: unknown; nextCursor?: number }>
}

export interface PageResult extends Omit<PageFetch, 'error'> {
  /** Where the page is kept: the same request finds it again with peekFresh(). */
  key: string
  /** Seconds since the page came from TikTok. */
  ageSeconds: number
  /** Seconds the page stays fresh; 0 once expired. */
  freshSeconds: number
}

/**
 * Answers from TikTok, each fetched once per distinct request while cached, however many callers
 * ask at once. Each call to TikTok is charged to the team's and the calling consumer's daily budget.
 */
export class Pages {
  readonly #options: PagesOptions

  constructor(options: PagesOptions) {
    this.#options = options
  }

  /** A page of a user's followers, newest first. */
  followers({ username, maxCount, cursor }: ListQuery, caller: Caller, options?: PageOptions): PageResult | Promise<PageResult> {
    return this.#get(
      {
        key: `followers:${username}:${maxCount}:${cursor ?? 'latest'}`,
        ttlSeconds: this.#listTtlSeconds(cursor),
        fetch: async (context) => {
          const data = await this.#options.api.queryUserFollowers({ username, max_count: maxCount, cursor }, context)
          const page: FollowersPage = { username, followers: accountsOf(data.user_followers), cursor: data.cursor, has_more: data.has_more }
          return { body: page, nextCursor: data.has_more ? data.cursor : undefined }
        }
      },
      caller,
      options
    )
  }

  /** A page of the accounts a user follows, newest first. */
  following({ username, maxCount, cursor }: ListQuery, caller: Caller, options?: PageOptions): PageResult | Promise<PageResult> {
    return this.#get(
      {
        key: `following:${username}:${maxCount}:${cursor ?? 'latest'}`,
        ttlSeconds: this.#listTtlSeconds(cursor),
        fetch: async (context) => {
          const data = await this.#options.api.queryUserFollowing({ username, max_count: maxCount, cursor }, context)
          const page: FollowingPage = { username, following: accountsOf(data.user_following), cursor: data.cursor, has_more: data.has_more }
          return { body: page, nextCursor: data.has_more ? data.cursor : undefined }
        }
      },
      caller,
      options
    )
  }

  /** A user's profile: every field Query User Info has. */
  profile(username: string, caller: Caller): PageResult | Promise<PageResult> {
    return this.#get(
      {
        key: `profile:${username}`,
        ttlSeconds: this.#options.ttlProfileSeconds,
        fetch: async (context) => {
          const info = await this.#options.api.queryUserInfo(username, context)
          // Only the documented fields: whatever else TikTok adds is not passed on.
          const profile = { username, ...Object.fromEntries(USER_INFO_FIELDS.map((field) => [field, info[field]])) } as UserProfile
          return { body: profile }
        }
      },
      caller
    )
  }

  /** A page of either list as its accounts, for the exports: they read the very pages the page routes cache. */
  async accounts(relation: Relation, query: ListQuery, caller: Caller, options?: PageOptions): Promise<AccountPage> {
    const { page, outcome } = await this[relation](query, caller, options)
    // The stored bytes are the FollowersPage or FollowingPage serialised above.
    const body = JSON.parse(page.body.toString()) as { cursor: number; has_more: boolean } & Record<Relation, Account[]>
    return { accounts: body[relation], cursor: body.cursor, hasMore: body.has_more, outcome }
  }

  /** The newest page (no cursor, or one not yet in the past) changes; a page at a past cursor is history. */
  #listTtlSeconds(cursor: number | undefined): number {
    const history = cursor !== undefined && cursor * 1000 < this.#options.clock.now()
    return history ? this.#options.ttlHistorySeconds : this.#options.ttlLatestSeconds
  }

  /**
   * A page fresh in this process's memory (PageStore.peekFresh) is returned synchronously: the hot
   * path of a cache hit has no promise, timer or race. Only a miss, an expired page or a wait for
   * another caller's load takes the asynchronous load with its deadline.
   */
  #get(spec: PageSpec, caller: Caller, options: PageOptions = {}): PageResult | Promise<PageResult> {
    return this.peekFresh(spec.key) ?? this.#wait(spec, caller, options)
  }

  /** The page kept at `key` as a hit, when it is fresh in this process's memory. */
  peekFresh(key: string): PageResult | undefined {
    const fresh = this.#options.store.peekFresh(key)
    return fresh === undefined ? undefined : this.#result(key, fresh, 'hit')
  }

  async #wait(spec: PageSpec, caller: Caller, { deadline = true }: PageOptions): Promise<PageResult> {
    const fetching = this.#fetch(spec, caller)
    const { page, outcome, error } = await (deadline ? withDeadline(fetching, this.#options.deadlineMs, this.#options.clock) : fetching)
    if (outcome === 'stale') caller.log.warn({ err: error }, 'TikTok failed; serving a stale page')
    return this.#result(spec.key, page, outcome)
  }

  #result(key: string, page: StoredPage, outcome: CacheOutcome): PageResult {
    const now = this.#options.clock.now()
    return {
      key,
      page,
      outcome,
      ageSeconds: Math.floor((now - page.storedAt) / 1000),
      freshSeconds: Math.max(0, Math.ceil((page.expiresAt - now) / 1000))
    }
  }

  /**
   * A coalesced load runs under the budget of the caller who started it. When that budget is what
   * failed, a caller who joined loads again under its own: it never gets another consumer's refusal.
   */
  async #fetch(spec: PageSpec, caller: Caller): Promise<PageFetch> {
    for (;;) {
      let failed: unknown
      try {
        const result = await this.#options.store.fetch(spec.key, () => this.#load(spec, caller))
        if (result.outcome !== 'stale' || (servesStale(result.error) && !aboutAnother(result.error, caller))) return result
        failed = result.error
      } catch (err) {
        failed = err
      }
      if (!aboutAnother(failed, caller)) throw failed
    }
  }

  async #load(spec: PageSpec, { consumer, log, exportJob }: Caller): Promise<StoredPage> {
    const { quota, clock } = this.#options
    let fetched
    try {
      fetched = await spec.fetch({ log, charge: () => quota.reserve(consumer, { forExport: exportJob !== undefined }) })
    } catch (err) {
      // TikTok itself says the day is spent (the gateway's own count may differ): stop calling until the reset.
      if (isGatewayError(err) && err.upstreamCode === 'daily_quota_limit_exceeded') await quota.markExhausted()
      throw err
    }
    // The store keeps the bytes in memory of their own (a small Buffer.from() is a view into Node's pool).
    const body = Buffer.from(JSON.stringify(fetched.body))
    const at = clock.now()
    return {
      body,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
      storedAt: at,
      expiresAt: at + spec.ttlSeconds * 1000,
      nextCursor: fetched.nextCursor
    }
  }
}

/** Only the documented fields of each account. */
const accountsOf = (accounts: Array<{ username: string; display_name: string }>) =>
  accounts.map(({ username, display_name }) => ({ username, display_name }))

/** Whether an old page may stand in for this failure (TikTok down, slow, limiting, out of quota; not a user gone). */
const servesStale = (error: unknown): boolean => traitsOf(error).servesStale

/** A refusal about another caller's own budget: this caller loads again under its own. */
function aboutAnother(error: unknown, { consumer, exportJob }: Caller): boolean {
  const { concerns } = traitsOf(error)
  if (concerns === 'exports') return exportJob === undefined
  return concerns === 'consumer' && isGatewayError(error) && error.consumer !== consumer
}

/** Gives up waiting after `ms`; the load itself goes on and fills the cache for the next caller. */
async function withDeadline<T>(work: Promise<T>, ms: number, clock: Clock): Promise<T> {
  let cancel: (() => void) | undefined
  const deadline = new Promise<never>((_, reject) => {
    cancel = clock.setTimeout(() => reject(failure('GW_DEADLINE_EXCEEDED', `No answer within the gateway's ${ms} ms deadline; retry shortly`)), ms)
  })
  try {
    return await Promise.race([work, deadline])
  } finally {
    cancel?.()
  }
}
