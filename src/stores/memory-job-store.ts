import { EXPORT_STATES, type ExportState } from '../schemas/export-jobs.js'
import { UNFINISHED, type JobStore, type Lease, type NewJob, type PageCommit, type Setback, type StoredJob } from './job-store.js'

interface Entry {
  job: StoredJob
  lines: string[]
  seen: Set<string>
  /** When the job is due to run: created, resumes, retry or lease end. */
  dueAt: number
  holder?: string
  leaseUntil: number
  /** Set when the job ends: it and its records go then. */
  expiresAt?: number
}

const BATCH = 1000

/**
 * Jobs in this process: they run here and are gone after a restart. JavaScript runs each method's
 * synchronous part to completion, which makes it atomic here.
 */
export class MemoryJobStore implements JobStore {
  readonly #entries = new Map<string, Entry>()
  readonly #retentionMs: number
  readonly #now: () => number

  constructor(retentionMs: number, now: () => number) {
    this.#retentionMs = retentionMs
    this.#now = now
  }

  async create(job: NewJob): Promise<StoredJob> {
    const stored: StoredJob = { ...job, state: 'queued', records: 0, pages: 0, updatedAt: job.createdAt, failures: 0 }
    this.#entries.set(job.id, { job: stored, lines: [], seen: new Set(), dueAt: job.createdAt, leaseUntil: 0 })
    return { ...stored }
  }

  async get(id: string): Promise<StoredJob | undefined> {
    const entry = this.#entry(id)
    return entry && { ...entry.job }
  }

  async list(owner?: string): Promise<StoredJob[]> {
    return [...this.#entries.keys()]
      .map((id) => this.#entry(id)?.job)
      .filter((job): job is StoredJob => job !== undefined && (owner === undefined || job.owner === owner))
      .sort((a, b) => b.createdAt - a.createdAt)
      .map((job) => ({ ...job }))
  }

  async due(at: number): Promise<string[]> {
    return [...this.#entries.entries()].filter(([, entry]) => UNFINISHED.includes(entry.job.state) && entry.dueAt <= at).map(([id]) => id)
  }

  async claim(id: string, { holder, now, until }: Lease): Promise<StoredJob | undefined> {
    const entry = this.#entry(id)
    if (entry === undefined || !UNFINISHED.includes(entry.job.state)) return undefined
    if (entry.holder !== undefined && entry.holder !== holder && entry.leaseUntil > now) return undefined
    Object.assign(entry, { holder, leaseUntil: until, dueAt: until })
    Object.assign(entry.job, { state: 'running', updatedAt: now, resumesAt: undefined })
    return { ...entry.job }
  }

  async renew(id: string, lease: Lease): Promise<boolean> {
    const entry = this.#held(id, lease)
    if (entry === undefined) return false
    Object.assign(entry, { leaseUntil: lease.until, dueAt: lease.until })
    return true
  }

  async commit(id: string, lease: Lease, { accounts, cursor, last }: PageCommit): Promise<StoredJob | undefined> {
    const entry = this.#held(id, lease)
    if (entry === undefined) return undefined
    const { job } = entry
    for (const account of accounts) {
      if (job.maxRecords !== undefined && job.records >= job.maxRecords) break
      if (entry.seen.has(account.username)) continue
      entry.seen.add(account.username)
      entry.lines.push(JSON.stringify({ username: account.username, display_name: account.display_name }))
      job.records++
    }
    Object.assign(job, { pages: job.pages + 1, cursor, updatedAt: lease.now, failures: 0, error: undefined })
    Object.assign(entry, { leaseUntil: lease.until, dueAt: lease.until })
    if (last || (job.maxRecords !== undefined && job.records >= job.maxRecords)) this.#end(entry, 'done', lease.now)
    return { ...job }
  }

  async setBack(id: string, lease: Lease, setback: Setback): Promise<boolean> {
    const entry = this.#held(id, lease)
    if (entry === undefined) return false
    Object.assign(entry.job, { error: setback.error, updatedAt: lease.now })
    if (setback.state === 'failed') {
      this.#end(entry, 'failed', lease.now)
    } else if (setback.state === 'paused') {
      Object.assign(entry.job, { state: 'paused', resumesAt: setback.resumesAt })
      Object.assign(entry, { holder: undefined, leaseUntil: 0, dueAt: setback.resumesAt })
    } else {
      Object.assign(entry.job, { state: 'queued', failures: entry.job.failures + 1 })
      Object.assign(entry, { holder: undefined, leaseUntil: 0, dueAt: setback.retryAt })
    }
    return true
  }

  async release(id: string, lease: Lease): Promise<void> {
    const entry = this.#held(id, lease)
    if (entry === undefined) return
    entry.job.state = 'queued'
    Object.assign(entry, { holder: undefined, leaseUntil: 0, dueAt: lease.now })
  }

  async cancel(id: string, at: number): Promise<StoredJob | undefined> {
    const entry = this.#entry(id)
    if (entry === undefined) return undefined
    if (UNFINISHED.includes(entry.job.state)) {
      entry.job.updatedAt = at
      entry.job.resumesAt = undefined
      this.#end(entry, 'cancelled', at)
    }
    return { ...entry.job }
  }

  async restoreFailed(job: StoredJob, at: number, error: string): Promise<void> {
    const entry: Entry = { job: { ...job, records: 0, pages: 0, updatedAt: at, resumesAt: undefined, error }, lines: [], seen: new Set(), dueAt: at, leaseUntil: 0 }
    this.#entries.set(job.id, entry)
    this.#end(entry, 'failed', at)
  }

  async *records(id: string): AsyncIterable<string[]> {
    const lines = this.#entry(id)?.lines ?? []
    for (let start = 0; start < lines.length; start += BATCH) yield lines.slice(start, start + BATCH)
  }

  async countByState(): Promise<Record<ExportState, number>> {
    const counts = Object.fromEntries(EXPORT_STATES.map((state) => [state, 0])) as Record<ExportState, number>
    for (const id of [...this.#entries.keys()]) {
      const job = this.#entry(id)?.job
      if (job) counts[job.state]++
    }
    return counts
  }

  #end(entry: Entry, state: 'done' | 'failed' | 'cancelled', at: number): void {
    entry.job.state = state
    entry.seen.clear()
    Object.assign(entry, { holder: undefined, leaseUntil: 0, expiresAt: at + this.#retentionMs })
  }

  /** The entry if its lease is still `holder`'s and it is running; a lapsed lease nobody took over still counts. */
  #held(id: string, { holder }: Lease): Entry | undefined {
    const entry = this.#entry(id)
    return entry?.job.state === 'running' && entry.holder === holder ? entry : undefined
  }

  #entry(id: string): Entry | undefined {
    const entry = this.#entries.get(id)
    if (entry?.expiresAt !== undefined && entry.expiresAt <= this.#now()) {
      this.#entries.delete(id)
      return undefined
    }
    return entry
  }
}
