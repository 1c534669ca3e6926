import pino from 'pino'
import t, { type Test } from 'tap'
import { failure } from '../../src/errors.js'
import { ExportJobs } from '../../src/services/export-jobs.js'
import type { AccountPage } from '../../src/services/pages.js'
import { RedisJobStore } from '../../src/stores/redis-job-store.js'
import { buildGateway, GATEWAY_API_KEYS, KEYS } from '../helpers/gateway.js'
import { connect, NEEDS_REDIS_SERVER, next, ownRedis, type OwnRedis } from '../helpers/redis.js'
import { readingClock } from '../helpers/clock.js'

const NOW = Date.parse('2027-03-14T18:00:00Z')
const ALICE = { authorization: `Bearer ${KEYS.alice}` }
const PROBLEM_JSON = 'application/problem+json; charset=utf-8'

const page = (n: number): AccountPage => ({ accounts: [{ username: `user${n}`, display_name: `User ${n}` }], cursor: 100 - n, hasMore: true, outcome: 'miss' })

/** Export jobs on a Redis of the test's own, over pages the test hands out; `lines` collects the log. */
async function jobsOn(t: Test, redis: OwnRedis, accounts: (call: number) => Promise<AccountPage>) {
  const connection = await connect(t, redis.url)
  const { client } = connection
  const store = new RedisJobStore({ connection, keyPrefix: 'gw:', retentionMs: 86_400_000 })
  const lines: string[] = []
  const problems: string[] = []
  let calls = 0
  const jobs = new ExportJobs({
    store,
    pages: { accounts: () => accounts(++calls) },
    concurrency: 1,
    leaseMs: 60_000,
    sweepMs: 60_000,
    log: pino({ level: 'info' }, { write: (line: string) => lines.push(line) }),
    clock: readingClock(() => NOW),
    onProblem: (problem) => problems.push(problem)
  })
  t.teardown(() => jobs.close())
  return { jobs, store, client, lines, problems, calls: () => calls }
}

const OWNER = { consumer: 'alice', admin: false }

t.test('shared state faults and export jobs', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  t.test('a Redis full under noeviction sets the job back with the reason, a log line and a metric, instead of a silent retry forever', async (t) => {
    const redis = await ownRedis(t, ['--maxmemory-policy', 'noeviction'])
    const { jobs, client, lines, problems } = await jobsOn(t, redis, async () => {
      // Full from the first page on: the page's records cannot be written.
      await client.config('SET', 'maxmemory', '1')
      return page(1)
    })
    const { id } = await jobs.create('alice', { username: 'someone', relation: 'followers' })
    await jobs.idle()
    await client.config('SET', 'maxmemory', '0')
    t.match(await jobs.get(id, OWNER), { state: 'queued', records: 0, failures: 1, error: /Redis is full.*retrying at/ })
    t.same(problems, ['GW_SHARED_STATE_UNAVAILABLE'])
    t.ok(lines.some((line) => /"msg":"export job stopped short"/.test(line) && /Redis is full/.test(line)))
  })

  t.test('a job whose Redis is flushed under it is written back as failed with the reason, a log line and a metric', async (t) => {
    const redis = await ownRedis(t)
    const { jobs, client, lines, problems } = await jobsOn(t, redis, async (call) => {
      if (call === 3) await client.flushall()
      return page(call)
    })
    const { id } = await jobs.create('alice', { username: 'someone', relation: 'followers' })
    await jobs.idle()
    t.match(await jobs.get(id, OWNER), { state: 'failed', records: 0, error: /vanished.*after 2 records/ })
    t.same((await jobs.list(OWNER)).map((job) => job.id), [id], 'listed again for its owner')
    t.same(problems, ['lost'])
    t.ok(lines.some((line) => /"level":50/.test(line) && /export job vanished/.test(line)))
  })

  t.test('a waiting job (queued for a retry) flushed from Redis is written back as failed at the next sweep of the replica that knew it', async (t) => {
    const redis = await ownRedis(t)
    const { jobs, client, problems } = await jobsOn(t, redis, async () => {
      throw failure('GW_UPSTREAM_UNAVAILABLE', 'TikTok is down')
    })
    const { id } = await jobs.create('alice', { username: 'someone', relation: 'followers' })
    await jobs.idle()
    t.match(await jobs.get(id, OWNER), { state: 'queued', error: /TikTok is down; retrying at/ })
    await client.flushall()
    await jobs.sweep()
    await jobs.idle()
    t.match(await jobs.get(id, OWNER), { state: 'failed', error: /vanished/ })
    t.same(problems, ['GW_UPSTREAM_UNAVAILABLE', 'lost'])
  })

  t.test('stop() lets the page under way finish, makes no further call and hands the job back at once', async (t) => {
    const redis = await ownRedis(t)
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    let started!: () => void
    const first = new Promise<void>((resolve) => (started = resolve))
    const { jobs, store, calls } = await jobsOn(t, redis, async (call) => {
      if (call === 1) {
        started()
        await held
      }
      return page(call)
    })
    const { id } = await jobs.create('alice', { username: 'someone', relation: 'followers' })
    await first
    jobs.stop()
    release()
    await jobs.idle()
    t.equal(calls(), 1)
    t.match(await store.get(id), { state: 'queued', records: 1, pages: 1 })
    t.same(await store.due(NOW), [id], 'due at once for another replica')
  })

  t.test('every export-job route answers 503 problem+json with Retry-After while Redis is down', async (t) => {
    const redis = await ownRedis(t)
    const { app } = await buildGateway(t, { GATEWAY_API_KEYS, REDIS_URL: redis.url, MAX_EVENT_LOOP_DELAY_MS: '0' }, { clock: readingClock(() => NOW) })
    await app.ready()
    const created = await app.inject({ method: 'POST', url: '/v1/exports', headers: ALICE, payload: { username: 'someone', relation: 'followers' } })
    t.equal(created.statusCode, 202)
    const { id } = created.json()
    const closed = next(app.stores.redis[0]!.client, 'close')
    await redis.kill()
    await closed
    for (const request of [
      { method: 'POST' as const, url: '/v1/exports', payload: { username: 'other', relation: 'followers' } },
      { method: 'GET' as const, url: '/v1/exports' },
      { method: 'GET' as const, url: `/v1/exports/${id}` },
      { method: 'GET' as const, url: `/v1/exports/${id}/records` },
      { method: 'DELETE' as const, url: `/v1/exports/${id}` }
    ]) {
      const res = await app.inject({ ...request, headers: ALICE })
      const label = `${request.method} ${request.url}`
      t.equal(res.statusCode, 503, label)
      t.equal(res.headers['content-type'], PROBLEM_JSON, label)
      t.equal(res.headers['retry-after'], '5', label)
      t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:shared-state-unavailable' }, label)
    }
  })
})
