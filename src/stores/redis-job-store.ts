import type { Redis } from 'ioredis'
import { EXPORT_STATES, type Relation, type ExportState } from '../schemas/export-jobs.js'
import type { JobStore, Lease, NewJob, PageCommit, Setback, StoredJob } from './job-store.js'
import { defineScripts, type ScriptName } from './lua.js'
import { sharedStateFailure, type RedisConnection } from './redis.js'

const BATCH = 1000

type JobScript = Extract<ScriptName, `job${string}`>
type JobCommands = Record<JobScript, (...args: Array<string | number>) => Promise<unknown>>

export interface RedisJobStoreOptions {
  connection: RedisConnection
  /** REDIS_KEY_PREFIX; the store's keys go under `<prefix>export:`. */
  keyPrefix: string
  retentionMs: number
}

/**
 * Jobs in Redis, shared by every replica and kept across restarts. A job is a hash; its records a
 * list of record lines with a set of the usernames seen; `due` orders unfinished jobs by when they
 * next need a runner. Finished jobs and their records expire after the retention time. Every failed
 * command is shared state unavailable (503 with Retry-After), never a bare error.
 */
export class RedisJobStore implements JobStore {
  readonly #redis: Redis & JobCommands
  readonly #prefix: string
  readonly #retentionMs: number

  constructor({ connection, keyPrefix, retentionMs }: RedisJobStoreOptions) {
    defineScripts(connection.client, ['jobClaim', 'jobRenew', 'jobCommit', 'jobSetBack', 'jobRelease', 'jobCancel'])
    this.#redis = connection.client as Redis & JobCommands
    this.#prefix = `${keyPrefix}export:`
    this.#retentionMs = retentionMs
  }

  async create(job: NewJob): Promise<StoredJob> {
    const { id, owner, createdAt } = job
    const fields = jobFields(job)
    await shared(
      this.#redis
        .multi()
        .hset(this.#key(id), fields)
        .zadd(this.#due, createdAt, id)
        .zadd(this.#index(), createdAt, id)
        .zadd(this.#index(owner), createdAt, id)
        .exec()
    )
    return toJob(Object.fromEntries(Object.entries(fields).map(([name, value]) => [name, String(value)])))
  }

  async get(id: string): Promise<StoredJob | undefined> {
    const fields = await shared(this.#redis.hgetall(this.#key(id)))
    return fields.id === undefined ? undefined : toJob(fields)
  }

  async list(owner?: string): Promise<StoredJob[]> {
    const index = this.#index(owner)
    const ids = await shared(this.#redis.zrevrange(index, 0, -1))
    const jobs = await shared(this.#hashes(ids))
    const gone = ids.filter((_, i) => jobs[i] === undefined)
    // Expired jobs leave their ids behind in the indexes; drop them as they are found.
    if (gone.length > 0) await shared(this.#redis.zrem(index, ...gone))
    return jobs.filter((job): job is StoredJob => job !== undefined)
  }

  async due(at: number): Promise<string[]> {
    return shared(this.#redis.zrangebyscore(this.#due, '-inf', at === Number.POSITIVE_INFINITY ? '+inf' : at))
  }

  async claim(id: string, { holder, now, until }: Lease): Promise<StoredJob | undefined> {
    const reply = await this.#run('jobClaim', id, [holder, now, until])
    return Array.isArray(reply) ? toJob(pairs(reply)) : undefined
  }

  async renew(id: string, { holder, now, until }: Lease): Promise<boolean> {
    return (await this.#run('jobRenew', id, [holder, now, until])) === 1
  }

  async commit(id: string, { holder, now, until }: Lease, { accounts, cursor, last }: PageCommit): Promise<StoredJob | undefined> {
    const records = accounts.flatMap(({ username, display_name }) => [username, JSON.stringify({ username, display_name })])
    const reply = await this.#run('jobCommit', id, [holder, now, until, cursor, last ? 1 : 0, this.#retentionMs, ...records])
    return Array.isArray(reply) ? toJob(pairs(reply)) : undefined
  }

  async setBack(id: string, { holder, now }: Lease, setback: Setback): Promise<boolean> {
    const at = setback.state === 'paused' ? setback.resumesAt : setback.state === 'queued' ? setback.retryAt : ''
    return (await this.#run('jobSetBack', id, [holder, now, setback.state, at, setback.error, this.#retentionMs])) === 1
  }

  async release(id: string, { holder, now }: Lease): Promise<void> {
    await this.#run('jobRelease', id, [holder, now])
  }

  async cancel(id: string, at: number): Promise<StoredJob | undefined> {
    const reply = await this.#run('jobCancel', id, [at, this.#retentionMs])
    return Array.isArray(reply) ? toJob(pairs(reply)) : undefined
  }

  async restoreFailed(job: StoredJob, at: number, error: string): Promise<void> {
    const key = this.#key(job.id)
    await shared(
      this.#redis
        .multi()
        .hset(key, { ...jobFields(job), state: 'failed', updated: at, error })
        .pexpire(key, this.#retentionMs)
        .zadd(this.#index(), job.createdAt, job.id)
        .zadd(this.#index(job.owner), job.createdAt, job.id)
        .exec()
    )
  }

  async *records(id: string): AsyncIterable<string[]> {
    for (let start = 0; ; start += BATCH) {
      const lines = await shared(this.#redis.lrange(this.#key(id, 'records'), start, start + BATCH - 1))
      if (lines.length > 0) yield lines
      if (lines.length < BATCH) return
    }
  }

  async countByState(): Promise<Record<ExportState, number>> {
    const counts = Object.fromEntries(EXPORT_STATES.map((state) => [state, 0])) as Record<ExportState, number>
    for (const job of await this.list()) counts[job.state]++
    return counts
  }

  /** Runs a job script on the job's keys. */
  #run(name: JobScript, id: string, args: Array<string | number>): Promise<unknown> {
    return shared(this.#redis[name](this.#key(id), this.#due, this.#key(id, 'records'), this.#key(id, 'seen'), id, ...args))
  }

  async #hashes(ids: readonly string[]): Promise<Array<StoredJob | undefined>> {
    if (ids.length === 0) return []
    const pipeline = this.#redis.pipeline()
    for (const id of ids) pipeline.hgetall(this.#key(id))
    const replies = (await pipeline.exec()) ?? []
    return replies.map(([err, fields]) => {
      if (err) throw err
      const hash = fields as Record<string, string>
      return hash.id === undefined ? undefined : toJob(hash)
    })
  }

  get #due(): string {
    return `${this.#prefix}due`
  }

  #index(owner?: string): string {
    return owner === undefined ? `${this.#prefix}all` : `${this.#prefix}owner:${owner}`
  }

  #key(id: string, part?: 'records' | 'seen'): string {
    return `${this.#prefix}job:${id}${part === undefined ? '' : `:${part}`}`
  }
}

/** A new job's hash: queued, nothing fetched yet. */
function jobFields(job: NewJob): Record<string, string | number> {
  return {
    id: job.id,
    owner: job.owner,
    username: job.username,
    relation: job.relation,
    state: 'queued',
    records: 0,
    pages: 0,
    created: job.createdAt,
    updated: job.createdAt,
    failures: 0,
    ...(job.maxRecords !== undefined && { max: job.maxRecords })
  }
}

async function shared<T>(command: Promise<T>): Promise<T> {
  try {
    return await command
  } catch (err) {
    throw sharedStateFailure(err)
  }
}

/** A flat HGETALL reply from a script, as field-value pairs. */
function pairs(reply: unknown[]): Record<string, string> {
  const fields: Record<string, string> = {}
  for (let i = 0; i < reply.length; i += 2) fields[String(reply[i])] = String(reply[i + 1])
  return fields
}

const optionalNumber = (value: string | undefined): number | undefined => (value === undefined ? undefined : Number(value))

function toJob(fields: Record<string, string>): StoredJob {
  const text = (name: string): string => {
    const value = fields[name]
    if (value === undefined) throw new Error(`export job hash without its ${name} field`)
    return value
  }
  return {
    id: text('id'),
    owner: text('owner'),
    username: text('username'),
    relation: fields.relation as Relation,
    maxRecords: optionalNumber(fields.max),
    state: fields.state as ExportState,
    records: Number(fields.records),
    pages: Number(fields.pages),
    cursor: optionalNumber(fields.cursor),
    createdAt: Number(fields.created),
    updatedAt: Number(fields.updated),
    resumesAt: optionalNumber(fields.resumes),
    error: fields.error,
    failures: Number(fields.failures)
  }
}
