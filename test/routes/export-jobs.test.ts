import { once } from 'node:events'
import { parse as parseCsv } from 'csv-parse/sync'
import t, { type Test } from 'tap'
import { sandboxAccounts, sandboxFollowers } from '../../src/sandbox/followers.js'
import { GATEWAY_API_KEYS, KEYS, sandboxGateway } from '../helpers/gateway.js'
import { readingClock } from '../helpers/clock.js'

const ALICE = { authorization: `Bearer ${KEYS.alice}` }
const BOB = { authorization: `Bearer ${KEYS.bob}` }
const ADMIN = { 'x-api-key': 'ops-key-0123456789' }
/** Load shedding off: on a busy machine it answers 503 to requests that these tests are not about. */
const KEYED = { GATEWAY_API_KEYS, GATEWAY_ADMIN_KEYS: `ops:${ADMIN['x-api-key']}`, MAX_EVENT_LOOP_DELAY_MS: '0' }
const PROBLEM_JSON = 'application/problem+json; charset=utf-8'
/** Sandbox users with 259 and 238 followers: 3 pages of 100 each. */
const THREE_PAGES = 'bravo'
const ALSO_THREE_PAGES = 'india'

/** A keyed gateway on the sandbox, on a clock the test moves (in the sandbox's past: its newest follow is 2026-01-01). */
async function gateway(t: Test, env: NodeJS.ProcessEnv = {}, sandboxOptions = {}) {
  let now = Date.parse('2027-03-14T18:00:00Z')
  const gw = await sandboxGateway(t, { ...KEYED, ...env }, sandboxOptions, { clock: readingClock(() => now) })
  const start = async (body: object, headers: Record<string, string> = ALICE) => {
    const res = await gw.app.inject({ method: 'POST', url: '/v1/exports', headers, payload: body })
    t.equal(res.statusCode, 202)
    return res
  }
  const job = async (id: string, headers: Record<string, string> = ALICE) => (await gw.app.inject({ url: `/v1/exports/${id}`, headers })).json()
  const records = async (id: string, headers: Record<string, string> = ALICE) => {
    const res = await gw.app.inject({ url: `/v1/exports/${id}/records`, headers })
    t.equal(res.headers['content-type'], 'application/x-ndjson')
    return res.body === '' ? [] : res.body.trimEnd().split('\n').map((line) => JSON.parse(line))
  }
  return { ...gw, start, job, records, setClock: (iso: string) => (now = Date.parse(iso)), now: () => now }
}

t.test('POST /v1/exports answers 202 with Location and the queued job; the job pages the whole list once, and its records stream back as NDJSON', async (t) => {
  const { app, sandbox, start, job, records } = await gateway(t)
  const res = await start({ username: 'Bravo', relation: 'followers' })
  const created = res.json()
  t.equal(res.headers.location, `/v1/exports/${created.id}`)
  t.match(created, {
    owner: 'alice',
    username: 'bravo',
    relation: 'followers',
    max_records: null,
    state: 'queued',
    records: 0,
    pages: 0,
    created_at: '2027-03-14T18:00:00.000Z',
    resumes_at: null,
    error: null
  })
  await app.exportJobs.idle()
  const expected = sandboxFollowers(THREE_PAGES).map(({ username, display_name }) => ({ username, display_name }))
  t.match(await job(created.id), { state: 'done', records: expected.length, pages: 3, error: null })
  t.same(await records(created.id), expected, 'every follower once, newest first, in the record lines of the streaming export')
  t.equal(sandbox.stats.followerCalls, 3, 'one upstream call per page of 100')
})

t.test("a job's records as CSV (format=csv or Accept: text/csv): a header row and the same accounts, named for the job", async (t) => {
  const { app, start, records } = await gateway(t)
  const { id } = (await start({ username: 'bravo', relation: 'followers' })).json()
  await app.exportJobs.idle()
  const expected = await records(id)
  for (const request of [{ url: `/v1/exports/${id}/records?format=csv`, headers: ALICE }, { url: `/v1/exports/${id}/records`, headers: { ...ALICE, accept: 'text/csv' } }]) {
    const res = await app.inject(request)
    t.equal(res.headers['content-type'], 'text/csv; charset=utf-8')
    t.equal(res.headers['content-disposition'], 'attachment; filename="bravo-followers.csv"')
    t.ok(res.body.startsWith('username,display_name\r\n'))
    t.same(parseCsv(res.body, { columns: true }), expected)
  }
})

t.test('a job over the accounts a user follows pages Query User Following the same way', async (t) => {
  const { app, sandbox, start, job, records } = await gateway(t)
  const { id } = (await start({ username: THREE_PAGES, relation: 'following' })).json()
  await app.exportJobs.idle()
  const expected = sandboxAccounts('following', THREE_PAGES).map(({ username, display_name }) => ({ username, display_name }))
  t.match(await job(id), { state: 'done', relation: 'following', records: expected.length, error: null })
  t.same(await records(id), expected)
  t.equal(sandbox.stats.followingCalls, Math.ceil(expected.length / 100))
  t.equal(sandbox.stats.followerCalls, 0)
})

t.test('pages already in the cache cost an export job no quota', async (t) => {
  const { app, sandbox, start, job } = await gateway(t)
  t.equal((await app.inject({ url: `/v1/users/${THREE_PAGES}/followers?max_count=100`, headers: BOB })).statusCode, 200)
  const { id } = (await start({ username: THREE_PAGES, relation: 'followers' })).json()
  await app.exportJobs.idle()
  t.match(await job(id), { state: 'done', pages: 3 })
  t.equal(sandbox.stats.followerCalls, 3, 'the first page came from the cache')
  t.match((await app.inject({ url: '/v1/quota', headers: ALICE })).json(), { exports: { used: 2 }, consumers: { alice: { used: 2 } } })
})

t.test('max_records stops the job at that many accounts', async (t) => {
  const { app, start, job, records } = await gateway(t)
  const { id } = (await start({ username: THREE_PAGES, relation: 'followers', max_records: 150 })).json()
  await app.exportJobs.idle()
  t.match(await job(id), { state: 'done', records: 150, pages: 2, max_records: 150 })
  t.equal((await records(id)).length, 150)
})

t.test('a spent export budget pauses the job until 00:00 UTC, and a clock past midnight resumes it', async (t) => {
  const { app, sandbox, start, job, records, setClock } = await gateway(t, { EXPORT_DAILY_BUDGET: '1' })
  const { id } = (await start({ username: THREE_PAGES, relation: 'followers' })).json()
  await app.exportJobs.idle()
  t.match(await job(id), {
    state: 'paused',
    records: 100,
    pages: 1,
    resumes_at: '2027-03-15T00:00:00.000Z',
    error: /Export jobs have made their 1 upstream calls for today \(EXPORT_DAILY_BUDGET\)/
  })
  t.equal((await app.inject({ url: `/v1/users/${ALSO_THREE_PAGES}/followers`, headers: ALICE })).statusCode, 200, 'interactive requests still have quota')
  await app.exportJobs.sweep()
  t.match(await job(id), { state: 'paused' }, 'not before midnight')
  setClock('2027-03-15T00:00:01Z')
  await app.exportJobs.sweep()
  await app.exportJobs.idle()
  t.match(await job(id), { state: 'paused', records: 200, pages: 2, resumes_at: '2027-03-16T00:00:00.000Z' }, 'one page a day')
  setClock('2027-03-16T00:00:00Z')
  await app.exportJobs.sweep()
  await app.exportJobs.idle()
  t.match(await job(id), { state: 'done', records: 259, pages: 3, resumes_at: null, error: null })
  t.equal(new Set((await records(id)).map((record) => record.username)).size, 259)
  t.equal(sandbox.stats.followerCalls, 4, 'three pages, and one interactive request')
})

t.test("the team's or the owner's spent budget pauses a job too; TikTok's spent quota as well", async (t) => {
  for (const [name, env, faults] of [
    ['team', { DAILY_REQUEST_BUDGET: '0' }, {}],
    ['owner', { CONSUMER_DAILY_BUDGETS: 'alice:0' }, {}],
    ['TikTok', {}, { quotaExhausted: true }]
  ] as const) {
    const { app, start, job } = await gateway(t, env, { faults })
    const { id } = (await start({ username: THREE_PAGES, relation: 'followers' })).json()
    await app.exportJobs.idle()
    t.match(await job(id), { state: 'paused', records: 0, resumes_at: '2027-03-15T00:00:00.000Z', error: /./ }, name)
  }
})

t.test('a job for a user TikTok does not have, or a private one, fails with the reason', async (t) => {
  const { app, start, job } = await gateway(t)
  const ghost = (await start({ username: 'ghost_user', relation: 'followers' })).json()
  const hidden = (await start({ username: 'private_user', relation: 'followers' })).json()
  await app.exportJobs.idle()
  t.match(await job(ghost.id), { state: 'failed', error: 'TikTok has no user "ghost_user"' })
  t.match(await job(hidden.id), { state: 'failed', error: /is a private account/ })
})

t.test('a TikTok failure queues the job for a retry with backoff; it goes on from its checkpoint', async (t) => {
  const { app, sandbox, start, job, setClock } = await gateway(t, { UPSTREAM_RETRIES: '0' })
  const { id } = (await start({ username: THREE_PAGES, relation: 'followers', max_records: 200 })).json()
  sandbox.events.once('answered', () => sandbox.setFaults({ errorRate: 1 }))
  await app.exportJobs.idle()
  t.match(await job(id), { state: 'queued', records: 100, error: /TikTok Research API failed with 500.*retrying at 2027-03-14T18:00:30.000Z/ })
  sandbox.setFaults({})
  await app.exportJobs.sweep()
  t.match(await job(id), { state: 'queued' }, 'not before the retry time')
  setClock('2027-03-14T18:00:30Z')
  await app.exportJobs.sweep()
  await app.exportJobs.idle()
  t.match(await job(id), { state: 'done', records: 200, pages: 2, error: null })
})

t.test('DELETE cancels a running job: no further upstream call, the records so far are kept', async (t) => {
  // Each answer takes a while, so that the cancel arrives while the second page is on its way.
  const { app, sandbox, start, job, records } = await gateway(t, {}, { faults: { latencyMs: 200 } })
  const { id } = (await start({ username: THREE_PAGES, relation: 'followers' })).json()
  await once(sandbox.events, 'followers')
  await once(sandbox.events, 'followers')
  const cancelled = await app.inject({ method: 'DELETE', url: `/v1/exports/${id}`, headers: ALICE })
  t.equal(cancelled.statusCode, 200)
  t.match(cancelled.json(), { state: 'cancelled', records: 100 })
  await app.exportJobs.idle()
  t.equal(sandbox.stats.followerCalls, 2, 'the page on its way was the last call')
  t.match(await job(id), { state: 'cancelled', records: 100, pages: 1 })
  t.equal((await records(id)).length, 100)
  const again = await app.inject({ method: 'DELETE', url: `/v1/exports/${id}`, headers: ALICE })
  t.match(again.json(), { state: 'cancelled', records: 100 }, 'cancelling again changes nothing')
})

t.test("a job is its owner's: another consumer gets 404 on every route, an admin sees and may cancel all", async (t) => {
  const { app, start } = await gateway(t, { EXPORT_DAILY_BUDGET: '0' })
  const { id } = (await start({ username: THREE_PAGES, relation: 'followers' })).json()
  const bobs = (await start({ username: ALSO_THREE_PAGES, relation: 'followers' }, BOB)).json()
  await app.exportJobs.idle()
  for (const [method, url] of [
    ['GET', `/v1/exports/${id}`],
    ['GET', `/v1/exports/${id}/records`],
    ['DELETE', `/v1/exports/${id}`],
    ['GET', '/v1/exports/no-such-job']
  ] as const) {
    const res = await app.inject({ method, url, headers: BOB })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.equal(res.headers['content-type'], PROBLEM_JSON)
    t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:export-not-found' })
  }
  t.same((await app.inject({ url: '/v1/exports', headers: BOB })).json().jobs.map((job: { id: string }) => job.id), [bobs.id])
  t.same((await app.inject({ url: '/v1/exports', headers: ALICE })).json().jobs.map((job: { id: string }) => job.id), [id])
  const all = (await app.inject({ url: '/v1/exports', headers: ADMIN })).json().jobs
  t.same(all.map((job: { owner: string }) => job.owner).sort(), ['alice', 'bob'])
  t.equal((await app.inject({ url: `/v1/exports/${id}`, headers: ADMIN })).statusCode, 200)
  t.match((await app.inject({ method: 'DELETE', url: `/v1/exports/${id}`, headers: ADMIN })).json(), { state: 'cancelled' })
  t.equal((await app.inject({ url: '/v1/exports' })).statusCode, 401)
})

t.test('an invalid body is a 400 problem and starts nothing', async (t) => {
  const { app } = await gateway(t)
  for (const payload of [
    { username: 'bravo', relation: 'friends' },
    { username: 'bravo' },
    { username: 'bad name', relation: 'followers' },
    { username: 'bravo', relation: 'followers', max_records: 0 },
    { username: 'bravo', relation: 'followers', max_records: 1e30 },
    { username: 'bravo', relation: 'followers', max_records: 1_000_000_001 },
    { username: 'bravo', relation: 'followers', cursor: 5 }
  ]) {
    const res = await app.inject({ method: 'POST', url: '/v1/exports', headers: ALICE, payload })
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    t.equal(res.headers['content-type'], PROBLEM_JSON)
  }
  t.same((await app.inject({ url: '/v1/exports', headers: ALICE })).json(), { jobs: [] })
})

t.test('a JSON body is taken as typed: a string for a number, a number for a string or an array for a value is a 400 problem', async (t) => {
  const { app } = await gateway(t)
  for (const [payload, detail] of [
    [{ username: 'bravo', relation: 'followers', max_records: '5' }, 'body.max_records must be integer'],
    [{ username: 123, relation: 'followers' }, 'body.username must be string'],
    [{ username: true, relation: 'followers' }, 'body.username must be string'],
    [{ username: 'bravo', relation: ['followers'] }, 'body.relation must be equal to one of the allowed values']
  ] as const) {
    const res = await app.inject({ method: 'POST', url: '/v1/exports', headers: ALICE, payload })
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    t.equal(res.headers['content-type'], PROBLEM_JSON)
    t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:invalid-request', detail, request_id: res.headers['x-request-id'] })
  }
  t.same((await app.inject({ url: '/v1/exports', headers: ALICE })).json(), { jobs: [] })
  const query = await app.inject({ url: '/v1/users/bravo/followers?max_count=5', headers: ALICE })
  t.equal(query.json().followers.length, 5, 'a query string is text, still read as the integer its schema says')
})

t.test('a body that is not JSON is a 415 problem, one over the body limit a 413 problem; neither starts a job', async (t) => {
  const { app } = await gateway(t)
  const json = JSON.stringify({ username: 'bravo', relation: 'followers' })
  for (const [contentType, payload, status, type] of [
    ['text/plain', json, 415, 'unsupported-media-type'],
    ['application/x-www-form-urlencoded', 'username=bravo&relation=followers', 415, 'unsupported-media-type'],
    ['application/json', json.replace('}', `,"pad":"${'x'.repeat(1 << 20)}"}`), 413, 'body-too-large']
  ] as const) {
    const res = await app.inject({ method: 'POST', url: '/v1/exports', headers: { ...ALICE, 'content-type': contentType }, payload })
    t.equal(res.statusCode, status, contentType)
    t.equal(res.headers['content-type'], PROBLEM_JSON)
    t.match(res.json(), { type: `urn:tiktok-research-gateway:problem:${type}`, status, instance: '/v1/exports', request_id: res.headers['x-request-id'] })
  }
  t.same((await app.inject({ url: '/v1/exports', headers: ALICE })).json(), { jobs: [] })
})

t.test('GET /v1/exports takes no query parameters: an unknown one is a 400 problem, as on the page routes', async (t) => {
  const { app } = await gateway(t)
  const res = await app.inject({ url: '/v1/exports?state=done', headers: ALICE })
  t.equal(res.statusCode, 400)
  t.equal(res.headers['content-type'], PROBLEM_JSON)
  t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:invalid-request', detail: "querystring must NOT have additional properties: 'state'" })
})

t.test('/metrics counts jobs by state, records exported and the quota jobs spent', async (t) => {
  const { app, start } = await gateway(t, { EXPORT_DAILY_BUDGET: '2' })
  await start({ username: THREE_PAGES, relation: 'followers' })
  await app.exportJobs.idle()
  const metrics = (await app.inject('/metrics')).body
  t.match(metrics, /gateway_export_jobs\{state="paused"\} 1/)
  t.match(metrics, /gateway_export_jobs\{state="done"\} 0/)
  t.match(metrics, /gateway_export_records_total 200/)
  t.match(metrics, /gateway_quota_used\{scope="exports",consumer=""\} 2/)
  t.match(metrics, /gateway_quota_remaining\{scope="exports",consumer=""\} 0/)
})

t.test('a job id that could name another storage key is a 400 problem', async (t) => {
  const { app, start } = await gateway(t)
  const { id } = (await start({ username: THREE_PAGES, relation: 'followers' })).json()
  for (const url of [`/v1/exports/${id}:records`, `/v1/exports/${id}:seen/records`, '/v1/exports/..%2F..', `/v1/exports/${'a'.repeat(65)}`]) {
    const res = await app.inject({ url, headers: ALICE })
    t.equal(res.statusCode, 400, url)
    t.equal(res.headers['content-type'], PROBLEM_JSON)
  }
  t.equal((await app.inject({ method: 'DELETE', url: `/v1/exports/${id}:records`, headers: ALICE })).statusCode, 400)
})
