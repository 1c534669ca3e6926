import t from 'tap'
import { MockAgent } from 'undici'
import { buildGateway, GATEWAY_API_KEYS, KEYS, sandboxGateway } from '../helpers/gateway.js'
import { readingClock, STOPPED_CLOCK } from '../helpers/clock.js'

const ALICE = { authorization: `Bearer ${KEYS.alice}` }
const BOB = { authorization: `Bearer ${KEYS.bob}` }
const NO_RATE_LIMIT = { RATE_LIMIT_PER_MINUTE: '100000' }

t.test('200 concurrent cold requests with a team budget of 50 make exactly 50 upstream calls; the rest are 429 until 00:00 UTC', async (t) => {
  const now = Date.parse('2030-01-01T12:00:00Z')
  const { app, sandbox } = await sandboxGateway(t, { ...NO_RATE_LIMIT, DAILY_REQUEST_BUDGET: '50', UPSTREAM_RETRIES: '0' }, {}, { clock: readingClock(() => now) })
  const responses = await Promise.all(Array.from({ length: 200 }, (_, i) => app.inject(`/v1/users/user${i}/followers`)))
  const refusals = responses.filter((res) => res.statusCode === 429)
  t.equal(responses.filter((res) => res.statusCode === 200).length, 50)
  t.equal(refusals.length, 150)
  t.equal(sandbox.stats.followerCalls, 50)
  const [refused] = refusals
  if (refused === undefined) return
  t.match(refused.json(), { type: 'urn:tiktok-research-gateway:problem:daily-quota-exhausted', status: 429 })
  t.equal(refused.headers['retry-after'], '43200', 'Retry-After runs to 00:00 UTC')
})

t.test('cache hits never spend quota', async (t) => {
  const { app, sandbox } = await sandboxGateway(t, { DAILY_REQUEST_BUDGET: '1' })
  for (let i = 0; i < 10; i++) t.equal((await app.inject('/v1/users/someone/followers')).statusCode, 200)
  t.equal(sandbox.stats.followerCalls, 1)
  t.equal((await app.inject('/v1/users/other/followers')).statusCode, 429, 'a new page needs budget')
  t.match((await app.inject('/v1/quota')).json(), { team: { limit: 1, used: 1, remaining: 0 } })
})

t.test('a consumer over its daily budget gets 429 while others and its cached pages still work', async (t) => {
  const { app, sandbox } = await sandboxGateway(t, { GATEWAY_API_KEYS, CONSUMER_DAILY_BUDGETS: 'bob:2' })
  t.equal((await app.inject({ url: '/v1/users/a/followers', headers: BOB })).statusCode, 200)
  t.equal((await app.inject({ url: '/v1/users/b/followers', headers: BOB })).statusCode, 200)
  const third = await app.inject({ url: '/v1/users/c/followers', headers: BOB })
  t.equal(third.statusCode, 429)
  t.match(third.json(), { type: 'urn:tiktok-research-gateway:problem:consumer-budget-exhausted', detail: /"bob" has made its 2 upstream calls/ })
  t.ok(Number(third.headers['retry-after']) > 0)
  t.equal((await app.inject({ url: '/v1/users/a/followers', headers: BOB })).headers['x-cache'], 'HIT', 'cached pages cost nothing')
  t.equal((await app.inject({ url: '/v1/users/c/followers', headers: ALICE })).statusCode, 200, 'alice has her own budget')
  t.equal(sandbox.stats.followerCalls, 3)
})

t.test('budgets reset at 00:00 UTC on the injected clock, whatever the real date', async (t) => {
  // Days long past: a store that read the real clock would see every counter expired.
  let now = Date.parse('2020-02-28T23:59:00Z')
  const { app } = await sandboxGateway(t, { DAILY_REQUEST_BUDGET: '1' }, {}, { clock: readingClock(() => now) })
  t.equal((await app.inject('/v1/users/a/followers')).statusCode, 200)
  const refused = await app.inject('/v1/users/b/followers')
  t.equal(refused.statusCode, 429)
  t.equal(refused.headers['retry-after'], '60')
  now = Date.parse('2020-02-29T00:00:01Z')
  t.equal((await app.inject('/v1/users/b/followers')).statusCode, 200)
  t.match((await app.inject('/v1/quota')).json(), { day: '2020-02-29', resets_at: '2020-03-01T00:00:00.000Z', team: { used: 1 } })
})

t.test("TikTok's daily_quota_limit_exceeded marks the day spent: no further upstream calls until the reset", async (t) => {
  const { app, sandbox } = await sandboxGateway(t, {}, { faults: { quotaExhausted: true } })
  const first = await app.inject('/v1/users/a/followers')
  t.equal(first.statusCode, 429)
  t.match(first.json(), { type: 'urn:tiktok-research-gateway:problem:daily-quota-exhausted', code: 'daily_quota_limit_exceeded' })
  sandbox.setFaults({})
  const second = await app.inject('/v1/users/b/followers')
  t.equal(second.statusCode, 429)
  t.equal(sandbox.stats.followerCalls, 1, 'the gateway stopped calling')
  t.match((await app.inject('/v1/quota')).json(), { team: { used: 20000, remaining: 0 } })
})

t.test('GET /v1/quota shows the team and the caller; an admin sees every consumer', async (t) => {
  const { app } = await sandboxGateway(t, { GATEWAY_API_KEYS, GATEWAY_ADMIN_KEYS: 'ops:ops-key-0123456789', CONSUMER_DAILY_BUDGETS: 'bob:7' })
  await app.inject({ url: '/v1/users/a/followers', headers: ALICE })
  await app.inject({ url: '/v1/users/b/followers', headers: ALICE })
  const alice = (await app.inject({ url: '/v1/quota', headers: ALICE })).json()
  t.same(alice.team, { limit: 20000, used: 2, remaining: 19998 })
  t.same(alice.consumers, { alice: { limit: 5000, used: 2, remaining: 4998 } })
  const admin = (await app.inject({ url: '/v1/quota', headers: { 'x-api-key': 'ops-key-0123456789' } })).json()
  t.same(Object.keys(admin.consumers), ['alice', 'bob', 'ops'])
  t.same(admin.consumers.bob, { limit: 7, used: 0, remaining: 7 })
  t.equal((await app.inject('/v1/quota')).statusCode, 401)
})

t.test('GET /v1/quota takes no query parameters: an unknown one is a 400 problem, as on the page routes', async (t) => {
  const { app } = await sandboxGateway(t, { GATEWAY_API_KEYS })
  const res = await app.inject({ url: '/v1/quota?consumer=bob', headers: ALICE })
  t.equal(res.statusCode, 400)
  t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:invalid-request', detail: "querystring must NOT have additional properties: 'consumer'" })
})

t.test('each consumer has its own request rate limit', async (t) => {
  const { app, sandbox } = await sandboxGateway(t, { GATEWAY_API_KEYS, RATE_LIMIT_PER_MINUTE: '3' }, {}, { clock: STOPPED_CLOCK })
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/v1/users/a/followers', headers: ALICE })).statusCode, 200)
  const limited = await app.inject({ url: '/v1/users/a/followers', headers: ALICE })
  t.equal(limited.statusCode, 429)
  t.equal(limited.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.match(limited.json(), { type: 'urn:tiktok-research-gateway:problem:consumer-rate-limited', detail: /"alice" sent more than 3 requests a minute/ })
  t.ok(Number(limited.headers['retry-after']) > 0 && Number(limited.headers['retry-after']) <= 60)
  t.equal((await app.inject({ url: '/v1/users/a/followers', headers: BOB })).statusCode, 200, 'bob is not limited by alice')
  t.equal(sandbox.stats.followerCalls, 1)
})

t.test("a coalesced caller never gets another consumer's refusal: it loads again under its own budget", async (t) => {
  const agent = new MockAgent()
  agent.disableNetConnect()
  t.teardown(() => agent.close())
  const tiktok = agent.get('https://open.tiktokapis.com')
  tiktok.intercept({ path: '/v2/oauth/token/', method: 'POST' }).reply(200, { access_token: 'clt.x', expires_in: 7200, token_type: 'Bearer' }).persist()
  const followers = { path: '/v2/research/user/followers/', method: 'POST' }
  // Alice's first attempt fails slowly; her retry is refused by her spent budget while bob waits on her load.
  tiktok.intercept(followers).reply(500, { data: {}, error: { code: 'internal_error', message: '', log_id: 'L' } }).delay(200)
  tiktok.intercept(followers).reply(200, { data: { user_followers: [], cursor: 1, has_more: false }, error: { code: 'ok', message: '', log_id: 'L' } })
  const { app } = await buildGateway(
    t,
    { TIKTOK_CLIENT_KEY: 'k', TIKTOK_CLIENT_SECRET: 's', GATEWAY_API_KEYS, CONSUMER_DAILY_BUDGETS: 'alice:1', UPSTREAM_RETRIES: '1' },
    { dispatcher: agent }
  )
  const [alice, bob] = await Promise.all([
    app.inject({ url: '/v1/users/shared/followers', headers: ALICE }),
    app.inject({ url: '/v1/users/shared/followers', headers: BOB })
  ])
  t.equal(alice.statusCode, 429)
  t.match(alice.json(), { type: 'urn:tiktok-research-gateway:problem:consumer-budget-exhausted', detail: /"alice"/ })
  t.equal(bob.statusCode, 200, 'bob gets the page, loaded under his own budget')
  t.notMatch(bob.body + JSON.stringify(bob.headers), /alice/)
  t.match((await app.inject({ url: '/v1/quota', headers: BOB })).json(), { team: { used: 2 }, consumers: { bob: { used: 1 } } })
  agent.assertNoPendingInterceptors()
})

t.test('a consumer has one rate limit across every route: N requests split over two routes reach the limit at N', async (t) => {
  const { app } = await sandboxGateway(t, { GATEWAY_API_KEYS, RATE_LIMIT_PER_MINUTE: '4' }, {}, { clock: STOPPED_CLOCK })
  const statuses = []
  for (const url of ['/v1/users/a/followers', '/v1/quota', '/v1/users/a/followers', '/v1/quota', '/v1/quota', '/v1/users/a/followers']) {
    statuses.push((await app.inject({ url, headers: ALICE })).statusCode)
  }
  t.same(statuses, [200, 200, 200, 200, 429, 429])
  t.equal((await app.inject({ url: '/v1/quota', headers: BOB })).statusCode, 200, 'bob has his own bucket')
})

t.test('every consumer route shares the one bucket: once it is spent, each route answers 429', async (t) => {
  const { app } = await sandboxGateway(t, { GATEWAY_API_KEYS, RATE_LIMIT_PER_MINUTE: '2' }, {}, { clock: STOPPED_CLOCK })
  for (let i = 0; i < 2; i++) t.equal((await app.inject({ url: '/v1/quota', headers: ALICE })).statusCode, 200)
  const routes = [
    { url: '/v1/users/a/followers' },
    { url: '/v1/users/a/following' },
    { url: '/v1/users/a' },
    { url: '/v1/users/a/followers/export' },
    { url: '/v1/users/a/following/export' },
    { url: '/v1/exports' },
    { url: '/v1/exports', method: 'POST' as const, payload: { username: 'a', relation: 'followers' } },
    { url: '/v1/exports/c0a8e0f2-2f4b-4a55-9c43-2b0f0b7d3c11' }
  ]
  for (const route of routes) t.equal((await app.inject({ ...route, headers: ALICE })).statusCode, 429, `${route.method ?? 'GET'} ${route.url}`)
})
