import { randomUUID } from 'node:crypto'
import { setImmediate } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import { failure, isGatewayError, traitsOf } from '../errors.js'
import type { ExportRequest } from '../schemas/export-jobs.js'
import { UNFINISHED, type JobStore, type Lease, type Setback, type StoredJob } from '../stores/job-store.js'
import { nextUtcDay } from '../utc-day.js'
import { ListWalk } from './list-walk.js'
import { EXPORT_PAGE_SIZE, type AccountPage, type Caller, type Pages } from './pages.js'

/** Who asks: a consumer sees its own jobs, an admin everyone's. */
export interface Viewer {
  consumer: string
  admin: boolean
}

export interface ExportJobsOptions {
  store: JobStore
  pages: Pick<Pages, 'accounts'>
  /** Jobs this replica runs at the same time. */
  concurrency: number
  /** How long a replica holds a job without renewing; another replica takes over after it. */
  leaseMs: number
  /** How often this replica looks for due jobs: created elsewhere, resuming, or left by a replica that died. */
  sweepMs: number
  log: FastifyBaseLogger
  clock: Clock
  /** Accounts a page added to a job. */
  onRecords?: (count: number) => void
  /** A job stopped short (by the problem's code) or vanished from the store (`lost`). */
  onProblem?: (problem: string) => void
}

/** TikTok failures in a row after which a job fails rather than waits again. */
const MAX_FAILURES = 8
const RETRY_BASE_MS = 30_000
const RETRY_MAX_MS = 30 * 60_000

/**
 * Export jobs: each pages through a whole list, one page of 100 per call through the page cache
 * (cached pages cost nothing) and the team's, the owner's and the export budget, checkpointing
 * after every page. A spent budget pauses a job until 00:00 UTC, when a sweep resumes it; a
 * replica holds a job under a lease, so each job runs on one replica at a time.
 */
export class ExportJobs {
  readonly #options: ExportJobsOptions
  /** This replica's name as a lease holder. */
  readonly #holder = randomUUID()
  readonly #running = new Map<string, Promise<void>>()
  /**
   * Unfinished jobs this replica created or ran, as last seen: one that vanishes from the store
   * (Redis flushed, or restarted empty) while it waits is written back as failed at the next sweep.
   */
  readonly #known = new Map<string, StoredJob>()
  #stopSweeping: (() => void) | undefined
  #sweeping: Promise<void> | undefined
  /** A sweep asked for while one ran: it runs next, as far as the furthest asked for. */
  #nextUntil: number | undefined
  #closed = false

  constructor(options: ExportJobsOptions) {
    this.#options = options
  }

  async create(owner: string, { username, relation, max_records: maxRecords }: ExportRequest): Promise<StoredJob> {
    const job = await this.#options.store.create({ id: randomUUID(), owner, username: username.toLowerCase(), relation, maxRecords, createdAt: this.#options.clock.now() })
    this.#known.set(job.id, job)
    void this.sweep()
    return job
  }

  async get(id: string, viewer: Viewer): Promise<StoredJob> {
    const job = await this.#options.store.get(id)
    // Another consumer's job is answered as a missing one: ids are not secrets, but they say nothing either.
    if (job === undefined || (!viewer.admin && job.owner !== viewer.consumer)) {
      throw failure('GW_EXPORT_NOT_FOUND', `No export job "${id}" of yours`)
    }
    return job
  }

  async list(viewer: Viewer): Promise<StoredJob[]> {
    return this.#options.store.list(viewer.admin ? undefined : viewer.consumer)
  }

  /** Cancels the job wherever it runs: its runner's next write is refused, so it makes no further call. */
  async cancel(id: string, viewer: Viewer): Promise<StoredJob> {
    await this.get(id, viewer)
    const job = await this.#options.store.cancel(id, this.#options.clock.now())
    if (job === undefined) throw failure('GW_EXPORT_NOT_FOUND', `No export job "${id}" of yours`)
    return job
  }

  /** One of the viewer's jobs and its records, in batches of lines read while the caller takes them. */
  async records(id: string, viewer: Viewer): Promise<{ job: StoredJob; batches: AsyncIterable<string[]> }> {
    const job = await this.get(id, viewer)
    return { job, batches: this.#options.store.records(id) }
  }

  /** Re-checks every job at once (see `recheck`), then sweeps every `sweepMs`. */
  async start(): Promise<void> {
    await this.recheck()
    this.#stopSweeping = this.#options.clock.setInterval(() => void this.sweep(), this.#options.sweepMs)
  }

  /**
   * Takes every unfinished job whose lease is free, paused ones included, so that a budget raised in
   * the config takes effect at once; a job still out of budget pauses again until the same time.
   */
  recheck(): Promise<void> {
    return this.sweep(Number.POSITIVE_INFINITY)
  }

  /** Runs jobs due by `until` (now by default) while this replica has room; tests call it after moving the clock. */
  async sweep(until = this.#options.clock.now()): Promise<void> {
    if (this.#sweeping) {
      this.#nextUntil = Math.max(this.#nextUntil ?? until, until)
      return this.#sweeping
    }
    this.#sweeping = this.#sweep(until).finally(() => {
      this.#sweeping = undefined
      const next = this.#nextUntil
      this.#nextUntil = undefined
      if (next !== undefined && !this.#closed) void this.sweep(next)
    })
    return this.#sweeping
  }

  /** Resolves once this replica runs no job (tests await it instead of sleeping). */
  async idle(): Promise<void> {
    while (this.#sweeping || this.#running.size > 0) await Promise.all([this.#sweeping, ...this.#running.values()])
  }

  /**
   * Stops sweeping and tells each run to stop after its current page and hand its job back, for
   * another replica to take at once. Called when the close begins, not after the connections drain.
   */
  stop(): void {
    this.#closed = true
    this.#stopSweeping?.()
  }

  /** Stops, then waits for the runs to finish their page and hand their jobs back. */
  async close(): Promise<void> {
    this.stop()
    await this.idle()
  }

  async #sweep(until: number): Promise<void> {
    const { store, concurrency, log } = this.#options
    try {
      await this.#checkKnown()
      for (const id of await store.due(until)) {
        if (this.#closed || this.#running.size >= concurrency) return
        if (this.#running.has(id)) continue
        const job = await store.claim(id, this.#lease())
        if (job === undefined) continue
        const run = this.#run(job)
          .catch((err: unknown) => log.error({ err, job: id }, 'export job run failed; the job is retried when its lease runs out'))
          .finally(() => {
            this.#running.delete(id)
            if (!this.#closed) void this.sweep()
          })
        this.#running.set(id, run)
      }
    } catch (err) {
      log.error({ err }, 'looking for due export jobs failed; trying again at the next sweep')
    }
  }

  /** Follows the waiting jobs this replica knows: gone from the store, each is written back as failed; finished, it is forgotten. */
  async #checkKnown(): Promise<void> {
    const waiting = [...this.#known.values()].filter((job) => !this.#running.has(job.id))
    const stored = await Promise.all(waiting.map((job) => this.#options.store.get(job.id)))
    for (const [i, job] of waiting.entries()) {
      const now = stored[i]
      if (now === undefined) await this.#restore(job, this.#options.log.child({ job: job.id }))
      else this.#remember(now)
    }
  }

  #remember(job: StoredJob): void {
    if (UNFINISHED.includes(job.state)) this.#known.set(job.id, job)
    else this.#known.delete(job.id)
  }

  async #run(claimed: StoredJob): Promise<void> {
    const { store, pages, log, onRecords } = this.#options
    const { id, relation, username, owner } = claimed
    const caller: Caller = { consumer: owner, log: log.child({ job: id }), exportJob: id }
    const walk = new ListWalk()
    let job = claimed
    this.#remember(job)
    while (!this.#closed) {
      // Checked before every call, so that a job cancelled anywhere makes no further call.
      if (!(await store.renew(id, this.#lease()))) return this.#lost(job, caller)
      let committed: StoredJob | undefined
      let page: AccountPage
      try {
        page = await pages.accounts(relation, { username, maxCount: EXPORT_PAGE_SIZE, cursor: job.cursor }, caller)
        committed = await store.commit(id, this.#lease(), { accounts: page.accounts, cursor: page.cursor, last: !page.hasMore })
      } catch (err) {
        // TikTok, a budget, or Redis refusing the page's records (full): the row of the error table says what next.
        return this.#setBack(job, err, caller)
      }
      // Cancelled, or taken over by a replica that found the lease run out: the page is not recorded here.
      if (committed === undefined) return this.#lost(job, caller)
      const added = committed.records - job.records
      onRecords?.(added)
      job = committed
      this.#remember(job)
      if (job.state !== 'running') return
      const stuck = walk.afterPage(added, page.cursor)
      if (stuck !== undefined) return this.#setBack(job, stuck, caller)
      // Cached pages resolve without a turn of the event loop: let timers, I/O and signals in between pages.
      await setImmediate()
    }
    await store.release(id, this.#lease())
  }

  /** Stops a run short of the end as the failure's row says, with a log line and a count of the problem. */
  async #setBack(job: StoredJob, err: unknown, caller: Caller): Promise<void> {
    const setback = this.#setbackOf(err, job)
    caller.log.warn({ err, state: setback.state }, 'export job stopped short')
    this.#options.onProblem?.(isGatewayError(err) ? err.code : 'unexpected')
    if (!(await this.#options.store.setBack(job.id, this.#lease(), setback))) await this.#lost(job, caller)
  }

  /**
   * The job is no longer this runner's: cancelled or taken over (nothing to say), or gone from the
   * store under it (Redis flushed, or restarted empty without persistence), which its owner must learn.
   */
  async #lost(job: StoredJob, { log }: Caller): Promise<void> {
    if ((await this.#options.store.get(job.id)) === undefined) await this.#restore(job, log)
  }

  async #restore(job: StoredJob, log: FastifyBaseLogger): Promise<void> {
    const { store, clock, onProblem } = this.#options
    this.#known.delete(job.id)
    log.error({ records: job.records }, 'export job vanished from the store (Redis flushed, or restarted empty without persistence); marked failed')
    onProblem?.('lost')
    await store.restoreFailed(job, clock.now(), `The job vanished from the shared store (Redis flushed, or restarted empty without persistence) after ${job.records} records, which are lost; start a new export`)
  }

  /** What a failure does to a job: its row of the error table says pause, fail, or retry with backoff. */
  #setbackOf(err: unknown, job: StoredJob): Setback {
    const now = this.#options.clock.now()
    const error = isGatewayError(err) ? err : undefined
    const detail = error?.message ?? 'The gateway failed unexpectedly'
    const effect = traitsOf(err).job
    if (effect === 'pause') return { state: 'paused', resumesAt: nextUtcDay(now), error: detail }
    // The user is gone, private or unavailable, or the list makes no progress: asking again would spend quota on the same answer.
    if (effect === 'fail') return { state: 'failed', error: detail }
    if (job.failures + 1 >= MAX_FAILURES) return { state: 'failed', error: `${detail} (${MAX_FAILURES} failures in a row)` }
    const backoffMs = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** job.failures)
    const retryAt = now + Math.max(backoffMs, (error?.retryAfterSeconds ?? 0) * 1000)
    return { state: 'queued', retryAt, error: `${detail}; retrying at ${new Date(retryAt).toISOString()}` }
  }

  #lease(): Lease {
    const now = this.#options.clock.now()
    return { holder: this.#holder, now, until: now + this.#options.leaseMs }
  }
}

