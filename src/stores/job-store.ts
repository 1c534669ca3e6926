import type { ExportState, Relation } from '../schemas/export-jobs.js'
import type { Account } from '../schemas/followers.js'

/** An export job as stored; times are epoch milliseconds of the app's clock. */
export interface StoredJob {
  id: string
  owner: string
  /** Lower-cased. */
  username: string
  relation: Relation
  maxRecords?: number
  state: ExportState
  records: number
  pages: number
  /** Where the next page starts; undefined until the first page is in. */
  cursor?: number
  createdAt: number
  updatedAt: number
  resumesAt?: number
  error?: string
  /** TikTok failures in a row since the last page that came in. */
  failures: number
}

export type NewJob = Pick<StoredJob, 'id' | 'owner' | 'username' | 'relation' | 'maxRecords' | 'createdAt'>

/** Who runs a job and until when, unless renewed: a replica that stops renewing loses the job to another. */
export interface Lease {
  holder: string
  now: number
  until: number
}

export interface PageCommit {
  accounts: readonly Account[]
  /** Where the next page starts. */
  cursor: number
  /** TikTok said there is no next page. */
  last: boolean
}

/** How a run stops short of the end: until a time (quota spent), for a retry after a TikTok failure, or for good. */
export type Setback =
  | { state: 'paused'; resumesAt: number; error: string }
  | { state: 'queued'; retryAt: number; error: string }
  | { state: 'failed'; error: string }

export const UNFINISHED: readonly ExportState[] = ['queued', 'running', 'paused']

/**
 * Export jobs, their records and their progress. Every change a runner makes is fenced by its
 * lease: once another replica has taken a job over (or it was cancelled), the old runner's writes
 * are refused, so no page is recorded twice. Implementations must make each method atomic, also
 * between replicas once the store is shared.
 */
export interface JobStore {
  create(job: NewJob): Promise<StoredJob>
  get(id: string): Promise<StoredJob | undefined>
  /** Newest first; every owner's when `owner` is undefined. */
  list(owner?: string): Promise<StoredJob[]>
  /** Unfinished jobs due by `at`: queued ones, paused ones whose time has come, running ones whose lease ran out. */
  due(at: number): Promise<string[]>
  /** Takes an unfinished job whose lease is free (or already `lease.holder`'s); it is then running. */
  claim(id: string, lease: Lease): Promise<StoredJob | undefined>
  /** Extends the lease; false once the job is no longer this holder's to run. */
  renew(id: string, lease: Lease): Promise<boolean>
  /**
   * Appends the page's accounts not recorded yet (each username once, up to maxRecords), moves the
   * checkpoint past the page and extends the lease, in one step; the job is done after the last
   * page or at maxRecords. Undefined (and nothing written) once the lease is lost.
   */
  commit(id: string, lease: Lease, page: PageCommit): Promise<StoredJob | undefined>
  /** Stops a run short of the end and frees the lease; false once the lease is lost. */
  setBack(id: string, lease: Lease, setback: Setback): Promise<boolean>
  /** Frees the lease of a running job (a replica shutting down) so that another replica takes it at once. */
  release(id: string, lease: Lease): Promise<void>
  /** Ends an unfinished job; its records are kept until it expires. Undefined when there is no such job. */
  cancel(id: string, at: number): Promise<StoredJob | undefined>
  /**
   * Writes back a job the store lost under its runner (Redis flushed, or restarted empty without
   * persistence) as failed with `error` and no records, so that its owner learns why; kept for the
   * retention time. The runner checks that the job is gone first: nobody else holds it then.
   */
  restoreFailed(job: StoredJob, at: number, error: string): Promise<void>
  /** The job's record lines (JSON, no newline), in the order fetched, a batch at a time. */
  records(id: string): AsyncIterable<string[]>
  countByState(): Promise<Record<ExportState, number>>
}
