import { failure } from '../errors.js'
import type { QuotaReport, Usage } from '../schemas/quota.js'
import type { CounterStore } from '../stores/counter-store.js'
import { nextUtcDay, secondsUntilNextUtcDay, utcDay } from '../utc-day.js'

export interface QuotaOptions {
  store: CounterStore
  /** Upstream research calls the team may make per UTC day. */
  teamBudget: number
  /** Upstream research calls a consumer may cause per UTC day. */
  consumerBudget: (consumer: string) => number
  /** Upstream research calls export jobs may make per UTC day, all jobs together. */
  exportBudget: number
  /** Every consumer a report may list. */
  consumers: readonly string[]
  now: () => number
}

/**
 * The team's daily Research API budget and each consumer's share of it. A call is reserved
 * against both before it is sent; cache hits never reach here.
 */
export class Quota {
  readonly #options: QuotaOptions

  constructor(options: QuotaOptions) {
    this.#options = options
  }

  /**
   * Counts one upstream call for `consumer` (and, for an export job, against the export budget too),
   * or throws a 429 failure when any of them is out of budget (or the store's 503 when it cannot tell
   * without Redis).
   */
  async reserve(consumer: string, { forExport = false }: { forExport?: boolean } = {}): Promise<void> {
    const { store, teamBudget, consumerBudget, exportBudget, now } = this.#options
    const at = now()
    const consumerLimit = consumerBudget(consumer)
    const refused = await store.reserve(
      [
        { key: teamKey(at), limit: teamBudget },
        { key: consumerKey(at, consumer), limit: consumerLimit },
        ...(forExport ? [{ key: exportsKey(at), limit: exportBudget }] : [])
      ],
      nextUtcDay(at)
    )
    const retryAfterSeconds = secondsUntilNextUtcDay(at)
    if (refused === 0) {
      throw failure('GW_DAILY_QUOTA_EXHAUSTED', "The team's daily Research API budget is spent; it resets at 00:00 UTC", { retryAfterSeconds })
    }
    if (refused === 1) {
      throw failure(
        'GW_CONSUMER_BUDGET_EXHAUSTED',
        `"${consumer}" has made its ${consumerLimit} upstream calls for today; cached pages are still served, and the budget resets at 00:00 UTC`,
        { retryAfterSeconds, consumer }
      )
    }
    if (refused === 2) {
      throw failure('GW_EXPORT_BUDGET_EXHAUSTED', `Export jobs have made their ${exportBudget} upstream calls for today (EXPORT_DAILY_BUDGET); it resets at 00:00 UTC`, {
        retryAfterSeconds
      })
    }
  }

  /** TikTok says the day's quota is spent: make no further calls until the reset. */
  async markExhausted(): Promise<void> {
    const { store, teamBudget, now } = this.#options
    const at = now()
    await store.raise(teamKey(at), teamBudget, nextUtcDay(at))
  }

  /** Today's usage of the team, of export jobs, and of `consumer` or of every consumer. */
  async report(consumer?: string): Promise<QuotaReport> {
    const { store, teamBudget, consumerBudget, exportBudget, now } = this.#options
    const consumers = consumer === undefined ? this.#options.consumers : [consumer]
    const at = now()
    const [team = 0, exports = 0, ...used] = await store.read([teamKey(at), exportsKey(at), ...consumers.map((consumer) => consumerKey(at, consumer))])
    const usage = (limit: number, count: number): Usage => ({ limit, used: count, remaining: Math.max(0, limit - count) })
    return {
      day: utcDay(at),
      resets_at: new Date(nextUtcDay(at)).toISOString(),
      team: usage(teamBudget, team),
      exports: usage(exportBudget, exports),
      consumers: Object.fromEntries(consumers.map((consumer, i) => [consumer, usage(consumerBudget(consumer), used[i] ?? 0)]))
    }
  }
}

const teamKey = (at: number): string => `quota:${utcDay(at)}:team`
const exportsKey = (at: number): string => `quota:${utcDay(at)}:exports`
const consumerKey = (at: number, consumer: string): string => `quota:${utcDay(at)}:consumer:${consumer}`
