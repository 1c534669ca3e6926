import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import { EXPORT_STATES, type ExportRelation, type ExportState } from '../schemas/export-jobs.js'
import type { JobStore, Lease, NewJob, PageCommit, Setback, StoredJob } from './job-store.js'
import { sharedStateFailure } from './redis.js'

const BATCH = 1000

/** Lua shared by the scripts below. KEYS: job hash, due set, records list, seen set; ARGV[1] the job id. */
const COMMON = `
local function held(holder)
  return redis.call('HGET', KEYS[1], 'state') == 'running' and redis.call('HGET', KEYS[1], 'holder') == holder
end
local function finish(state, at, retention)
  redis.call('HSET', KEYS[1], 'state', state, 'updated', at)
  redis.call('HDEL', KEYS[1], 'holder', 'lease', 'resumes')
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('DEL', KEYS[4])
  redis.call('PEXPIRE', KEYS[1], retention)
  redis.call('PEXPIRE', KEYS[3], retention)
end
`

/**
 * Lease and state changes write a few bytes and may run when Redis is at maxmemory (allow-oom), so
 * a full Redis can still pause, finish or cancel a job; appending records may not.
 */
const SMALL_WRITE = '#!lua flags=allow-oom\n'

const scripts = {
  // ARGV: id, holder, now, until
  claim: `${SMALL_WRITE}
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'running' and state ~= 'paused' then return false end
local holder = redis.call('HGET', KEYS[1], 'holder')
if holder and holder ~= ARGV[2] and tonumber(redis.call('HGET', KEYS[1], 'lease')) > tonumber(ARGV[3]) then return false end
redis.call('HSET', KEYS[1], 'state', 'running', 'holder', ARGV[2], 'lease', ARGV[4], 'updated', ARGV[3])
redis.call('HDEL', KEYS[1], 'resumes')
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return redis.call('HGETALL', KEYS[1])`,

  // ARGV: id, holder, now, until
  renew: `${SMALL_WRITE}${COMMON}
if not held(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'lease', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return 1`,

  // ARGV: id, holder, now, until, cursor, last (1|0), retention ms, then username and record line pairs
  commit: `#!lua
${COMMON}
if not held(ARGV[2]) then return false end
local max = tonumber(redis.call('HGET', KEYS[1], 'max'))
local count = tonumber(redis.call('HGET', KEYS[1], 'records'))
for i = 8, #ARGV, 2 do
  if max and count >= max then break end
  if redis.call('SADD', KEYS[4], ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[3], ARGV[i + 1])
    count = count + 1
  end
end
redis.call('HINCRBY', KEYS[1], 'pages', 1)
redis.call('HSET', KEYS[1], 'records', count, 'cursor', ARGV[5], 'updated', ARGV[3], 'lease', ARGV[4], 'failures', 0)
redis.call('HDEL', KEYS[1], 'error')
if ARGV[6] == '1' or (max and count >= max) then
  finish('done', ARGV[3], ARGV[7])
else
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
end
return redis.call('HGETALL', KEYS[1])`,

  // ARGV: id, holder, now, state, at (resumes or retry; '' when failed), error, retention ms
  setBack: `${SMALL_WRITE}${COMMON}
if not held(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'error', ARGV[6], 'updated', ARGV[3])
if ARGV[4] == 'failed' then
  finish('failed', ARGV[3], ARGV[7])
  return 1
end
redis.call('HSET', KEYS[1], 'state', ARGV[4])
redis.call('HDEL', KEYS[1], 'holder', 'lease')
if ARGV[4] == 'paused' then
  redis.call('HSET', KEYS[1], 'resumes', ARGV[5])
else
  redis.call('HINCRBY', KEYS[1], 'failures', 1)
end
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
return 1`,

  // ARGV: id, holder, now
  release: `${SMALL_WRITE}${COMMON}
if not held(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'state', 'queued')
redis.call('HDEL', KEYS[1], 'holder', 'lease')
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1`,

  // ARGV: id, now, retention ms
  cancel: `${SMALL_WRITE}${COMMON}
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return false end
if state == 'queued' or state == 'running' or state == 'paused' then finish('cancelled', ARGV[2], ARGV[3]) end
return redis.call('HGETALL', KEYS[1])`
} as const

type ScriptName = keyof typeof scripts
const SHAS = Object.fromEntries(Object.entries(scripts).map(([name, body]) => [name, createHash('sha1').update(body).digest('hex')])) as Record<ScriptName, string>

export interface RedisJobStoreOptions {
  redis: Redis
  /** REDIS_KEY_PREFIX; the store's keys go under `<prefix>export:`. */
  prefix: string
  retentionMs: number
}

/**
 * Jobs in Redis, shared by every replica and kept across restarts. A job is a hash; its records a
 * list of record lines with a set of the usernames seen; `due` orders unfinished jobs by when they
 * next need a runner. Finished jobs and their records expire after the retention time. Every failed
 * command is shared state unavailable (503 with Retry-After), never a bare error.
 */
export class RedisJobStore implements JobStore {
  readonly #redis: Redis
  readonly #prefix: string
  readonly #retentionMs: number

  constructor({ redis, prefix, retentionMs }: RedisJobStoreOptions) {
    this.#redis = redis
    this.#prefix = `${prefix}export:`
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
    const reply = await this.#run('claim', id, [holder, now, until])
    return Array.isArray(reply) ? toJob(pairs(reply)) : undefined
  }

  async renew(id: string, { holder, now, until }: Lease): Promise<boolean> {
    return (await this.#run('renew', id, [holder, now, until])) === 1
  }

  async commit(id: string, { holder, now, until }: Lease, { accounts, cursor, last }: PageCommit): Promise<StoredJob | undefined> {
    const records = accounts.flatMap(({ username, display_name }) => [username, JSON.stringify({ username, display_name })])
    const reply = await this.#run('commit', id, [holder, now, until, cursor, last ? 1 : 0, this.#retentionMs, ...records])
    return Array.isArray(reply) ? toJob(pairs(reply)) : undefined
  }

  async setBack(id: string, { holder, now }: Lease, setback: Setback): Promise<boolean> {
    const at = setback.state === 'paused' ? setback.resumesAt : setback.state === 'queued' ? setback.retryAt : ''
    return (await this.#run('setBack', id, [holder, now, setback.state, at, setback.error, this.#retentionMs])) === 1
  }

  async release(id: string, { holder, now }: Lease): Promise<void> {
    await this.#run('release', id, [holder, now])
  }

  async cancel(id: string, at: number): Promise<StoredJob | undefined> {
    const reply = await this.#run('cancel', id, [at, this.#retentionMs])
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

  /** Runs a script by its digest, loading it on a server that does not know it yet. */
  async #run(name: ScriptName, id: string, args: Array<string | number>): Promise<unknown> {
    const keys = [this.#key(id), this.#due, this.#key(id, 'records'), this.#key(id, 'seen')]
    try {
      return await this.#redis.evalsha(SHAS[name], keys.length, ...keys, id, ...args)
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw sharedStateFailure(err)
      return shared(this.#redis.eval(scripts[name], keys.length, ...keys, id, ...args))
    }
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
    relation: fields.relation as ExportRelation,
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
