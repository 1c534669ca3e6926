import { once } from 'node:events'
import t, { type Test } from 'tap'
import { MockAgent } from 'undici'
import { followersPage } from '../src/sandbox/followers.js'
import { buildGateway, sandboxGateway } from './helpers/gateway.js'
import { readingClock } from './helpers/clock.js'

const ORIGIN = 'https://open.tiktokapis.com'
const FOLLOWERS = { path: '/v2/research/user/followers/', method: 'POST' }
const OK = { data: { user_followers: [{ username: 'a', display_name: 'A' }], cursor: 5, has_more: false }, error: { code: 'ok', message: '', log_id: 'L' } }
const FAILED = { data: {}, error: { code: 'internal_error', message: 'try again', log_id: 'L500' } }

/** A gateway against a MockAgent that issues tokens, with a movable clock and no retries. */
async function mocked(t: Test, env: NodeJS.ProcessEnv = {}) {
  let now = Date.parse('2026-11-25T12:00:00Z')
  const agent = new MockAgent()
  agent.disableNetConnect()
  t.teardown(() => agent.close())
  const tiktok = agent.get(ORIGIN)
  tiktok.intercept({ path: '/v2/oauth/token/', method: 'POST' }).reply(200, { access_token: 'clt.x', expires_in: 7200, token_type: 'Bearer' }).persist()
  const { app } = await buildGateway(
    t,
    { TIKTOK_CLIENT_KEY: 'k', TIKTOK_CLIENT_SECRET: 's', GATEWAY_ALLOW_ANONYMOUS: 'true', UPSTREAM_RETRIES: '0', ...env },
    { dispatcher: agent, clock: readingClock(() => now) }
  )
  return { app, tiktok, agent, advance: (seconds: number) => (now += seconds * 1000) }
}

t.test('stale-if-error: a failing upstream gets the expired page with X-Cache: STALE and Age, within STALE_MAX_AGE_SECONDS', async (t) => {
  const { app, tiktok, advance } = await mocked(t, { CACHE_TTL_LATEST_SECONDS: '60', STALE_MAX_AGE_SECONDS: '3600' })
  tiktok.intercept(FOLLOWERS).reply(200, OK)
  const fresh = await app.inject('/v1/users/someone/followers')
  advance(120)
  tiktok.intercept(FOLLOWERS).reply(500, FAILED)
  const stale = await app.inject('/v1/users/someone/followers')
  t.equal(stale.statusCode, 200)
  t.equal(stale.headers['x-cache'], 'STALE')
  t.equal(stale.headers.age, '120')
  t.equal(stale.headers['cache-control'], 'private, max-age=0')
  t.equal(stale.body, fresh.body)
  advance(3600)
  tiktok.intercept(FOLLOWERS).reply(500, FAILED)
  t.equal((await app.inject('/v1/users/someone/followers')).statusCode, 502, 'too old to serve')
})

t.test('stale-if-error serves through timeouts, rate limits and a spent quota, but not a user that is gone', async (t) => {
  const { app, tiktok, advance } = await mocked(t, { CACHE_TTL_LATEST_SECONDS: '60' })
  tiktok.intercept(FOLLOWERS).reply(200, OK)
  await app.inject('/v1/users/someone/followers')
  const replies = [
    [504, '<html>504</html>'],
    [429, { data: {}, error: { code: 'rate_limit_exceeded', message: '', log_id: 'L429' } }],
    [429, { data: {}, error: { code: 'daily_quota_limit_exceeded', message: '', log_id: 'LQ' } }]
  ] as const
  for (const [status, body] of replies) {
    advance(120)
    tiktok.intercept(FOLLOWERS).reply(status, body)
    t.equal((await app.inject('/v1/users/someone/followers')).headers['x-cache'], 'STALE', `after ${status}`)
  }
  advance(120)
  t.equal((await app.inject('/v1/users/someone/followers')).headers['x-cache'], 'STALE', 'the spent day refuses before calling, still stale')

  const other = await mocked(t, { CACHE_TTL_LATEST_SECONDS: '60' })
  other.tiktok.intercept(FOLLOWERS).reply(200, OK)
  await other.app.inject('/v1/users/someone/followers')
  other.advance(120)
  other.tiktok.intercept(FOLLOWERS).reply(400, { data: {}, error: { code: 'invalid_params', message: 'cannot find the user', log_id: 'L404' } })
  t.equal((await other.app.inject('/v1/users/someone/followers')).statusCode, 404)
})

t.test('the circuit opens after repeated failures, fails fast, probes after the cooldown and closes on success', async (t) => {
  const { app, tiktok, agent, advance } = await mocked(t, { BREAKER_FAILURE_THRESHOLD: '2', BREAKER_COOLDOWN_SECONDS: '30' })
  const circuit = async () => /gateway_upstream_circuit_state (\d)/.exec((await app.inject('/metrics')).body)?.[1]
  tiktok.intercept(FOLLOWERS).reply(500, FAILED).times(2)
  t.equal((await app.inject('/v1/users/a/followers')).statusCode, 502)
  t.equal((await app.inject('/v1/users/b/followers')).statusCode, 502)
  t.equal(await circuit(), '2', 'open')

  const fast = await app.inject('/v1/users/c/followers')
  t.equal(fast.statusCode, 503)
  t.match(fast.json(), { type: 'urn:tiktok-research-gateway:problem:upstream-unavailable', detail: /circuit open/ })
  t.equal(fast.headers['retry-after'], '30')
  agent.assertNoPendingInterceptors()

  advance(31)
  t.equal(await circuit(), '1', 'half-open after the cooldown')
  tiktok.intercept(FOLLOWERS).reply(500, FAILED)
  t.equal((await app.inject('/v1/users/d/followers')).statusCode, 502, 'the probe failed')
  t.equal((await app.inject('/v1/users/e/followers')).statusCode, 503, 'open again at once')

  advance(31)
  tiktok.intercept(FOLLOWERS).reply(200, OK).times(2)
  t.equal((await app.inject('/v1/users/f/followers')).statusCode, 200, 'the probe succeeded')
  t.equal(await circuit(), '0', 'closed')
  t.equal((await app.inject('/v1/users/g/followers')).statusCode, 200)
})

t.test('a short upstream Retry-After is waited out and the call retried once', async (t) => {
  const { app, tiktok, agent } = await mocked(t)
  tiktok.intercept(FOLLOWERS).reply(429, { data: {}, error: { code: 'rate_limit_exceeded', message: '', log_id: 'L' } }, { headers: { 'retry-after': '0' } })
  tiktok.intercept(FOLLOWERS).reply(200, OK)
  t.equal((await app.inject('/v1/users/a/followers')).statusCode, 200)
  agent.assertNoPendingInterceptors()
})

t.test('a request past REQUEST_DEADLINE_MS is a 504; the upstream call goes on and fills the cache', async (t) => {
  const { app, sandbox } = await sandboxGateway(t, { REQUEST_DEADLINE_MS: '50' }, { faults: { latencyMs: 300 } })
  const answered = once(sandbox.events, 'answered')
  const late = await app.inject('/v1/users/slow/followers')
  t.equal(late.statusCode, 504)
  t.match(late.json(), { type: 'urn:tiktok-research-gateway:problem:deadline-exceeded' })
  await answered
  sandbox.setFaults({})
  t.equal((await app.inject('/v1/users/slow/followers')).statusCode, 200)
  t.equal(sandbox.stats.followerCalls, 1)
})

t.test('/metrics reports requests, cache outcomes, upstream calls, token exchanges and quota', async (t) => {
  const token = 'metrics-token-0123456789'
  const { app } = await sandboxGateway(t, { METRICS_TOKEN: token })
  await app.inject('/v1/users/a/followers')
  await app.inject('/v1/users/a/followers')
  const res = await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${token}` } })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain/)
  for (const line of [
    'gateway_cache_requests_total{outcome="miss"} 1',
    'gateway_cache_requests_total{outcome="hit"} 1',
    'gateway_upstream_calls_total{endpoint="followers",outcome="200"} 1',
    'gateway_upstream_calls_total{endpoint="token",outcome="200"} 1',
    'gateway_token_exchanges_total 1',
    'gateway_quota_used{scope="team",consumer=""} 1',
    'gateway_quota_remaining{scope="consumer",consumer="anonymous"} 4999',
    'gateway_http_request_duration_seconds_count{method="GET",route="/v1/users/:username/followers",status="200"} 2',
    'gateway_upstream_circuit_state 0'
  ]) {
    t.ok(res.body.includes(line), line)
  }
})

t.test('fault matrix: under every injected fault each response is correct data or a clean problem', async (t) => {
  const faults = {
    'internal errors': { errorRate: 0.5 },
    'HTML 504s': { edgeTimeoutRate: 0.5 },
    'connection resets': { resetRate: 0.5 },
    hangs: { hangRate: 0.3 },
    '429 storm': { rateLimitRate: 0.7, rateLimitRetryAfterSeconds: 0 },
    'long 429s': { rateLimitRate: 1, rateLimitRetryAfterSeconds: 120 },
    'quota spent': { quotaExhausted: true },
    latency: { latencyMs: 30 },
    'token revocation': {}
  }
  for (const [name, fault] of Object.entries(faults)) {
    const { app, sandbox } = await sandboxGateway(t, { UPSTREAM_TIMEOUT_MS: '150', RATE_LIMIT_PER_MINUTE: '100000' }, { faults: fault })
    const requests = Array.from({ length: 24 }, (_, i) => `/v1/users/user${i % 12}/followers?max_count=${5 + (i % 2)}`)
    const responses = await Promise.all(
      requests.map(async (url, i) => {
        if (name === 'token revocation' && i % 6 === 0) sandbox.revokeTokens()
        return { url, res: await app.inject(url) }
      })
    )
    let ok = 0
    for (const { url, res } of responses) {
      if (res.statusCode === 200) {
        ok++
        const [, username = '', maxCount] = /users\/(\w+)\/followers\?max_count=(\d+)/.exec(url)!
        const expected = followersPage(username, Number(maxCount), Math.floor(Date.now() / 1000))
        t.same(res.json().followers, expected.user_followers, `${name}: ${url} is the right page`)
      } else {
        t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8', `${name}: ${res.statusCode} is a problem`)
        t.ok([429, 502, 503, 504].includes(res.statusCode), `${name}: ${res.statusCode} is an upstream status, never a 500`)
        t.match(res.json(), { type: /^urn:tiktok-research-gateway:problem:/, title: String, detail: String })
      }
    }
    t.comment(`${name}: ${ok}/${responses.length} answered with data`)
  }
})
