import { once } from 'node:events'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { MockAgent } from 'undici'
import { SANDBOX_CREDENTIALS } from '../../src/config.js'
import { followersPage, sandboxFollowers } from '../../src/sandbox/followers.js'
import { startSandbox, type Faults } from '../../src/sandbox/sandbox.js'
import { RedisJobStore } from '../../src/stores/redis-job-store.js'
import { buildGateway, GATEWAY_API_KEYS, KEYS } from '../helpers/gateway.js'
import { connect, NEEDS_REDIS, TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'
import { readingClock } from '../helpers/clock.js'

const ALICE = { authorization: `Bearer ${KEYS.alice}` }
/** Sandbox users with 259, 238, 239 and 244 followers: 3 pages of 100 each. */
const USERS = ['bravo', 'india', 'mike', 'popular']
const BRAVO = 'bravo'
/**
 * Load shedding off and patient Redis timeouts: on a busy machine a shed request or a slow Redis reply
 * (the quota then falls back to its outage allowance and refuses) is not what these tests are about.
 */
const ENV = { GATEWAY_API_KEYS, MAX_EVENT_LOOP_DELAY_MS: '0', REDIS_CONNECT_TIMEOUT_MS: '5000', REDIS_COMMAND_TIMEOUT_MS: '5000' }
const START = Date.parse('2027-03-14T18:00:00Z')

/** Gateways ("replicas") on one Redis key prefix, on a clock the test moves; `replica()` again after closing one is a restart. */
function replicas(t: Test, upstream: { env?: NodeJS.ProcessEnv; dispatcher?: MockAgent }) {
  let now = START
  const clock = () => now
  const prefix = testPrefix(t)
  const replica = async (env: NodeJS.ProcessEnv = {}) => {
    const { app } = await buildGateway(t, { ...ENV, REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix, ...upstream.env, ...env }, { clock: readingClock(clock), dispatcher: upstream.dispatcher })
    await app.ready()
    return app
  }
  return { replica, prefix, clock, setClock: (iso: string) => (now = Date.parse(iso)) }
}

/** Replicas on the sandbox. */
async function onSandbox(t: Test, faults: Faults = {}) {
  const sandbox = await startSandbox({ ...SANDBOX_CREDENTIALS, now: () => START, faults })
  t.teardown(() => sandbox.close())
  return { sandbox, ...replicas(t, { env: { TIKTOK_API_BASE_URL: sandbox.url } }) }
}

/** A mock TikTok with one account of exactly 1,000 followers, paged by cursor as the Research API does; counts the followers calls. */
function thousandFollowers(t: Test) {
  const newest = Math.floor(START / 1000) - 86_400
  const followers = Array.from({ length: 1000 }, (_, i) => ({ username: `fan${i}`, display_name: `Fan ${i}`, followedAt: newest - i * 10 }))
  const agent = new MockAgent()
  agent.disableNetConnect()
  t.teardown(() => agent.close())
  const tiktok = agent.get('https://open.tiktokapis.com')
  tiktok.intercept({ path: '/v2/oauth/token/', method: 'POST' }).reply(200, { access_token: 'clt.x', expires_in: 7200, token_type: 'Bearer' }).persist()
  const calls = { followers: 0 }
  tiktok
    .intercept({ path: '/v2/research/user/followers/', method: 'POST' })
    .reply(({ body }) => {
      calls.followers++
      const { max_count: maxCount, cursor = newest } = JSON.parse(typeof body === 'string' ? body : '{}') as { max_count: number; cursor?: number }
      const start = followers.findIndex((follower) => follower.followedAt <= cursor)
      const page = followers.slice(start, start + maxCount)
      const data = {
        user_followers: page.map(({ username, display_name }) => ({ username, display_name })),
        cursor: (page.at(-1)?.followedAt ?? cursor) - 1,
        has_more: start + maxCount < followers.length
      }
      return { statusCode: 200, data: { data, error: { code: 'ok', message: '', log_id: 'L' } } }
    })
    .persist()
  return { agent, calls }
}

async function deleteErrorMarkers(prefix: string): Promise<void> {
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 0 })
  try {
    const markers = await redis.keys(`${prefix}page:*error:*`)
    if (markers.length > 0) await redis.del(...markers)
  } finally {
    await redis.quit()
  }
}

const create = async (app: Awaited<ReturnType<ReturnType<typeof replicas>['replica']>>, username: string) =>
  (await app.inject({ method: 'POST', url: '/v1/exports', headers: ALICE, payload: { username, relation: 'followers' } })).json<{ id: string }>().id

t.test('Redis-backed export jobs', { skip: NEEDS_REDIS }, async (t) => {
  t.test('a 1,000-follower job pauses at 300 records with a team budget of 3; after a restart with a budget of 100 it finishes: 1,000 records, each once, 10 upstream calls in all', async (t) => {
    const { agent, calls } = thousandFollowers(t)
    const { replica, prefix } = replicas(t, { dispatcher: agent })
    // The export budget is set apart so that the team's is the one that runs out.
    const first = await replica({ DAILY_REQUEST_BUDGET: '3', EXPORT_DAILY_BUDGET: '100' })
    const id = await create(first, 'star')
    await first.exportJobs.idle()
    t.match((await first.inject({ url: `/v1/exports/${id}`, headers: ALICE })).json(), {
      state: 'paused',
      records: 300,
      pages: 3,
      resumes_at: '2027-03-15T00:00:00.000Z',
      error: /team's daily Research API budget is spent/
    })
    await first.close()
    // A real restart takes longer than the page store's 1-second error marker, which would replay the refusal.
    await deleteErrorMarkers(prefix)

    // The same day, the budget raised in the config: the new gateway re-checks paused jobs as it starts.
    const second = await replica({ DAILY_REQUEST_BUDGET: '100', EXPORT_DAILY_BUDGET: '100' })
    await second.exportJobs.idle()
    t.match((await second.inject({ url: `/v1/exports/${id}`, headers: ALICE })).json(), { state: 'done', records: 1000, pages: 10, resumes_at: null, error: null })
    const res = await second.inject({ url: `/v1/exports/${id}/records`, headers: ALICE })
    const usernames = res.body.trimEnd().split('\n').map((line) => (JSON.parse(line) as { username: string }).username)
    t.same(usernames, Array.from({ length: 1000 }, (_, i) => `fan${i}`), 'each account once, newest first')
    t.equal(calls.followers, 10, 'no page fetched twice')
    t.match((await second.inject({ url: '/v1/quota', headers: ALICE })).json(), { team: { used: 10 }, exports: { used: 10 } }, "the day's count survived the restart")
  })

  t.test('two replicas never run one job twice: every page is committed once, and both replicas work', async (t) => {
    // Slow answers keep a replica busy with its job while the next one is created.
    const { sandbox, replica } = await onSandbox(t, { latencyMs: 20 })
    const env = { EXPORT_CONCURRENCY: '1' }
    const [a, b] = await Promise.all([replica(env), replica(env)])
    const ids: string[] = []
    for (const username of USERS) {
      ids.push(await create(a, username))
      // Both replicas look for due jobs at the same moment, every time.
      await Promise.all([a.exportJobs.sweep(), b.exportJobs.sweep()])
    }
    const unfinished = async () => (await a.inject({ url: '/v1/exports', headers: ALICE })).json<{ jobs: Array<{ state: string }> }>().jobs.some((job) => job.state !== 'done')
    while (await unfinished()) {
      await Promise.all([a.exportJobs.sweep(), b.exportJobs.sweep()])
      await Promise.all([a.exportJobs.idle(), b.exportJobs.idle()])
    }
    for (const [i, id] of ids.entries()) {
      const username = USERS[i] ?? ''
      t.match((await b.inject({ url: `/v1/exports/${id}`, headers: ALICE })).json(), { state: 'done', records: sandboxFollowers(username).length, pages: 3 }, username)
    }
    t.equal(sandbox.stats.followerCalls, 12, 'each page fetched once')
    const exported = async (app: typeof a) => Number(/gateway_export_records_total (\d+)/.exec((await app.inject('/metrics')).body)?.[1])
    const [byA, byB] = await Promise.all([exported(a), exported(b)])
    t.equal(byA + byB, USERS.reduce((sum, username) => sum + sandboxFollowers(username).length, 0))
    t.ok(byA > 0 && byB > 0, `both replicas ran jobs (${byA} and ${byB} records)`)
  })

  t.test('a replica that dies holding a job loses it when its lease runs out: another resumes from the checkpoint, and the late page of the dead one is refused', async (t) => {
    const { sandbox, replica, prefix, clock, setClock } = await onSandbox(t)
    const dead = new RedisJobStore({ connection: await connect(t, TEST_REDIS_URL), keyPrefix: prefix, retentionMs: 60_000 })
    const job = await dead.create({ id: 'orphan', owner: 'alice', username: BRAVO, relation: 'followers', createdAt: clock() })
    const lease = { holder: 'dead-replica', now: clock(), until: clock() + 60_000 }
    await dead.claim(job.id, lease)
    const first = followersPage(BRAVO, 100, Math.floor(clock() / 1000))
    await dead.commit(job.id, lease, { accounts: first.user_followers, cursor: first.cursor, last: false })

    const survivor = await replica()
    await survivor.exportJobs.sweep()
    await survivor.exportJobs.idle()
    t.match(await dead.get(job.id), { state: 'running', pages: 1 }, 'not taken while the lease runs')
    t.equal(sandbox.stats.followerCalls, 0)

    setClock('2027-03-14T18:01:00.001Z')
    await survivor.exportJobs.sweep()
    await survivor.exportJobs.idle()
    t.match((await survivor.inject({ url: '/v1/exports/orphan', headers: ALICE })).json(), { state: 'done', records: 259, pages: 3 })
    t.equal(sandbox.stats.followerCalls, 2, 'the first page was not fetched again')
    const second = followersPage(BRAVO, 100, first.cursor)
    t.equal(await dead.commit(job.id, lease, { accounts: second.user_followers, cursor: second.cursor, last: false }), undefined)
    t.match(await dead.get(job.id), { records: 259, pages: 3 })
  })

  t.test('a job cancelled through one replica stops running on the other: no further upstream call', async (t) => {
    // Each answer takes a while, so that the cancel arrives while the second page is on its way.
    const { sandbox, replica } = await onSandbox(t, { latencyMs: 200 })
    const [a, b] = await Promise.all([replica(), replica()])
    const id = await create(a, BRAVO)
    await once(sandbox.events, 'followers')
    await once(sandbox.events, 'followers')
    t.match((await b.inject({ method: 'DELETE', url: `/v1/exports/${id}`, headers: ALICE })).json(), { state: 'cancelled', records: 100 })
    await a.exportJobs.idle()
    t.equal(sandbox.stats.followerCalls, 2)
    t.match((await a.inject({ url: `/v1/exports/${id}`, headers: ALICE })).json(), { state: 'cancelled', records: 100, pages: 1 })
  })

  t.test('a replica shutting down hands its running job back: another takes it at once and goes on from the checkpoint', async (t) => {
    const { sandbox, replica } = await onSandbox(t, { latencyMs: 50 })
    const a = await replica()
    const id = await create(a, BRAVO)
    await once(sandbox.events, 'followers')
    await a.close()
    const b = await replica()
    await b.exportJobs.idle()
    t.match((await b.inject({ url: `/v1/exports/${id}`, headers: ALICE })).json(), { state: 'done', records: 259, pages: 3 })
    t.equal(sandbox.stats.followerCalls, 3)
  })
})
