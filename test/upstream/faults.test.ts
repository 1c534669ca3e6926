import { once } from 'node:events'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { MockAgent } from 'undici'
import { buildGateway } from '../helpers/gateway.js'
import { readingClock } from '../helpers/clock.js'

const ORIGIN = 'https://open.tiktokapis.com'
const FOLLOWERS = { path: '/v2/research/user/followers/', method: 'POST' }
const LIVE = { TIKTOK_CLIENT_KEY: 'live-key', TIKTOK_CLIENT_SECRET: 'live-secret', GATEWAY_ALLOW_ANONYMOUS: 'true' }
const OK_PAGE = { data: { user_followers: [{ username: 'a', display_name: 'A' }], cursor: 5, has_more: false }, error: { code: 'ok', message: '', log_id: 'L0' } }

/** The gateway's clock: Retry-After to 00:00 UTC is exact, whatever the real time. */
const NOW = Date.parse('2030-06-01T18:00:00Z')

const apiError = (code: string, message = '') => ({ data: {}, error: { code, message, log_id: `LOG-${code}` } })

/** A gateway against a MockAgent that issues tokens; the test scripts the followers replies. */
async function mockedGateway(t: Test) {
  const agent = new MockAgent()
  agent.disableNetConnect()
  t.teardown(() => agent.close())
  const tiktok = agent.get(ORIGIN)
  tiktok
    .intercept({ path: '/v2/oauth/token/', method: 'POST' })
    .reply(200, { access_token: 'clt.mock', expires_in: 7200, token_type: 'Bearer' })
    .persist()
  const { app } = await buildGateway(t, LIVE, { dispatcher: agent, clock: readingClock(() => NOW) })
  return { app, tiktok, agent }
}

t.test('each upstream error code maps to its documented problem', async (t) => {
  const cases = [
    { reply: [429, apiError('rate_limit_exceeded'), { 'retry-after': '30' }], status: 429, kind: 'rate-limited', retryAfter: '30' },
    { reply: [429, apiError('rate_limit_exceeded')], status: 429, kind: 'rate-limited', retryAfter: '60' },
    { reply: [429, apiError('daily_quota_limit_exceeded')], status: 429, kind: 'daily-quota-exhausted', retryAfter: 'midnight' },
    { reply: [401, apiError('scope_not_authorized')], status: 503, kind: 'scope-not-authorized' },
    // TikTok's known transient fault is retried like a 5xx (UPSTREAM_RETRIES=2: three attempts).
    { reply: [400, apiError('invalid_params', 'Invalid count or cursor')], status: 502, kind: 'upstream-error', attempts: 3 },
    { reply: [400, apiError('invalid_params', 'max_count is wrong')], status: 400, kind: 'invalid-request' },
    { reply: [418, apiError('teapot')], status: 502, kind: 'upstream-invalid-reply' }
  ] as const
  for (const { reply, status, kind, ...expect } of cases) {
    const { app, tiktok, agent } = await mockedGateway(t)
    const [code, body, headers] = reply
    tiktok.intercept(FOLLOWERS).reply(code, body, { headers: headers ?? {} }).times('attempts' in expect ? expect.attempts : 1)
    const res = await app.inject('/v1/users/someone/followers')
    t.equal(res.statusCode, status, body.error.code)
    t.match(res.json(), { type: `urn:tiktok-research-gateway:problem:${kind}`, status, code: body.error.code, log_id: body.error.log_id })
    if ('retryAfter' in expect) {
      t.equal(res.headers['retry-after'], expect.retryAfter === 'midnight' ? '21600' : expect.retryAfter)
    }
    agent.assertNoPendingInterceptors()
  }
})

t.test('a transient 500 is retried and the page served', async (t) => {
  const { app, tiktok, agent } = await mockedGateway(t)
  tiktok.intercept(FOLLOWERS).reply(500, apiError('internal_error'))
  tiktok.intercept(FOLLOWERS).reply(200, OK_PAGE)
  const res = await app.inject('/v1/users/someone/followers')
  t.equal(res.statusCode, 200)
  t.same(res.json().followers, [{ username: 'a', display_name: 'A' }])
  agent.assertNoPendingInterceptors()
})

t.test('a 500 on every attempt is a 502 with the upstream code, after 1 + UPSTREAM_RETRIES calls, and is not cached', async (t) => {
  const { app, tiktok, agent } = await mockedGateway(t)
  tiktok.intercept(FOLLOWERS).reply(500, apiError('internal_error')).times(3)
  const res = await app.inject('/v1/users/someone/followers')
  t.equal(res.statusCode, 502)
  t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:upstream-error', code: 'internal_error', log_id: 'LOG-internal_error' })
  agent.assertNoPendingInterceptors()
  tiktok.intercept(FOLLOWERS).reply(200, OK_PAGE)
  t.equal((await app.inject('/v1/users/someone/followers')).statusCode, 200, 'the failure was not cached')
})

t.test("an HTML 504 from TikTok's edge is retried, then a 504 problem", async (t) => {
  const { app, tiktok } = await mockedGateway(t)
  tiktok.intercept(FOLLOWERS).reply(504, '<html><body>504 Gateway Time-out</body></html>', { headers: { 'content-type': 'text/html' } }).times(3)
  const res = await app.inject('/v1/users/someone/followers')
  t.equal(res.statusCode, 504)
  t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:upstream-timeout' })
})

t.test('a 200 that is not the documented shape is a 502 invalid reply, asked once (asking again would pay for the same reply)', async (t) => {
  for (const body of ['not json', { data: { user_followers: 'nope' }, error: { code: 'ok', message: '' } }, { unexpected: true }]) {
    const { app, tiktok } = await mockedGateway(t)
    tiktok.intercept(FOLLOWERS).reply(200, body)
    const res = await app.inject('/v1/users/someone/followers')
    t.equal(res.statusCode, 502, JSON.stringify(body))
    t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
    t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:upstream-invalid-reply' })
  }
})

t.test('a token that TikTok keeps refusing is renewed once, then a 503', async (t) => {
  const { app, tiktok, agent } = await mockedGateway(t)
  tiktok.intercept(FOLLOWERS).reply(401, apiError('access_token_invalid')).times(2)
  const res = await app.inject('/v1/users/someone/followers')
  t.equal(res.statusCode, 503)
  t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:credentials-rejected', code: 'access_token_invalid' })
  agent.assertNoPendingInterceptors()
})

/** A real loopback server standing in for a misbehaving TikTok. */
async function listen(t: Test, server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const realGateway = (t: Test, baseUrl: string) =>
  buildGateway(t, { ...LIVE, TIKTOK_API_BASE_URL: baseUrl, UPSTREAM_TIMEOUT_MS: '150', UPSTREAM_RETRIES: '1' })

t.test('an upstream that refuses connections is a 503', async (t) => {
  const server = createServer()
  const url = await listen(t, server)
  server.close()
  const { app } = await realGateway(t, url)
  const res = await app.inject('/v1/users/someone/followers')
  t.equal(res.statusCode, 503)
  t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:upstream-unavailable' })
})

t.test('an upstream that never answers is a 504 after the timeout', async (t) => {
  const server = createServer(() => {})
  t.teardown(() => server.closeAllConnections())
  const { app } = await realGateway(t, await listen(t, server))
  const res = await app.inject('/v1/users/someone/followers')
  t.equal(res.statusCode, 504)
  t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:upstream-timeout' })
})

t.test('an upstream that resets the connection is a 502', async (t) => {
  const server = createServer((request) => request.socket.destroy())
  const { app } = await realGateway(t, await listen(t, server))
  const res = await app.inject('/v1/users/someone/followers')
  t.equal(res.statusCode, 502)
  t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:upstream-error' })
})

/** A loopback TikTok that issues tokens and answers followers calls with `followers`. */
function scriptedTikTok(followers: (response: ServerResponse) => void): Server {
  return createServer((request, response) => {
    if (request.url === '/v2/oauth/token/') {
      response.setHeader('content-type', 'application/json')
      response.end(JSON.stringify({ access_token: 'clt.real', expires_in: 7200, token_type: 'Bearer' }))
    } else {
      followers(response)
    }
  })
}

t.test('a reply larger than UPSTREAM_MAX_BODY_BYTES is cut off as soon as it passes the limit: a 502, and the upstream socket is closed', async (t) => {
  let upstreamClosed!: Promise<unknown>
  const server = scriptedTikTok((response) => {
    // An endless body: only the gateway giving up can end it.
    response.setHeader('content-type', 'application/json')
    const chunk = Buffer.alloc(64 * 1024, 'x')
    const pump = () => {
      while (response.write(chunk));
    }
    response.on('drain', pump)
    upstreamClosed = once(response, 'close')
    pump()
  })
  const { app } = await buildGateway(t, { ...LIVE, TIKTOK_API_BASE_URL: await listen(t, server), UPSTREAM_RETRIES: '0', UPSTREAM_MAX_BODY_BYTES: '100000' })
  const res = await app.inject('/v1/users/someone/followers')
  t.equal(res.statusCode, 502)
  t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:upstream-invalid-reply', detail: /larger than 100000 bytes/ })
  await upstreamClosed
})

t.test('an oversized reply is a property of its page: one charged call, no retry, and the circuit stays closed for every other page', async (t) => {
  const { app, tiktok, agent } = await mockedGateway(t)
  const huge = { ...OK_PAGE, padding: 'x'.repeat(2 * 1024 * 1024) }
  // More oversized pages than the breaker's threshold (5), each asked once.
  tiktok.intercept(FOLLOWERS).reply(200, huge).times(6)
  for (let i = 0; i < 6; i++) {
    const res = await app.inject(`/v1/users/big${i}/followers`)
    t.equal(res.statusCode, 502)
    t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:upstream-invalid-reply' })
  }
  agent.assertNoPendingInterceptors()
  t.equal(app.researchApi.breakerState, 'closed')
  t.equal((await app.quota.report()).team.used, 6, 'one call charged per request')
  tiktok.intercept(FOLLOWERS).reply(200, OK_PAGE)
  t.equal((await app.inject('/v1/users/small/followers')).statusCode, 200)
})

t.test('UPSTREAM_TIMEOUT_MS bounds the whole attempt: a trickling body is a 504, and the next request loads afresh', async (t) => {
  let healthy = false
  const trickles = new Set<ServerResponse>()
  const server = scriptedTikTok((response) => {
    if (healthy) return void response.end(JSON.stringify(OK_PAGE))
    trickles.add(response)
    response.write('{')
    const timer = setInterval(() => response.write(' '), 20)
    response.on('close', () => clearInterval(timer))
  })
  t.teardown(() => server.closeAllConnections())
  const { app } = await buildGateway(t, {
    ...LIVE,
    TIKTOK_API_BASE_URL: await listen(t, server),
    UPSTREAM_TIMEOUT_MS: '200',
    UPSTREAM_RETRIES: '0',
    REQUEST_DEADLINE_MS: '30000'
  })
  const slow = await app.inject('/v1/users/someone/followers')
  t.equal(slow.statusCode, 504)
  t.match(slow.json(), { type: 'urn:tiktok-research-gateway:problem:upstream-timeout' }, 'the upstream timeout, not the request deadline')
  healthy = true
  const next = await app.inject('/v1/users/someone/followers')
  t.equal(next.statusCode, 200, 'a fresh load, not a join of the abandoned one')
  t.equal(next.headers['x-cache'], 'MISS')
  t.equal(trickles.size, 1)
})

t.test('an access token that cannot travel in a header is refused at the exchange, and no research call is charged', async (t) => {
  const agent = new MockAgent()
  agent.disableNetConnect()
  t.teardown(() => agent.close())
  agent
    .get(ORIGIN)
    .intercept({ path: '/v2/oauth/token/', method: 'POST' })
    .reply(200, { access_token: 'clt.x\r\nx-injected: 1', expires_in: 7200, token_type: 'Bearer' })
    .persist()
  const { app } = await buildGateway(t, LIVE, { dispatcher: agent, clock: readingClock(Date.now) })
  const res = await app.inject('/v1/users/someone/followers')
  t.equal(res.statusCode, 502)
  t.match((await app.inject('/v1/quota')).json(), { team: { used: 0 } })
})

t.test('an upstream Retry-After that is not a sane delta-seconds is replaced or clamped to 1..86400', async (t) => {
  for (const [sent, passed] of [['1e+23', '60'], ['999999999', '86400'], ['Wed, 21 Oct 2015 07:28:00 GMT', '60'], ['-5', '60']] as const) {
    const { app, tiktok } = await mockedGateway(t)
    tiktok.intercept(FOLLOWERS).reply(429, apiError('rate_limit_exceeded'), { headers: { 'retry-after': sent } })
    const res = await app.inject('/v1/users/someone/followers')
    t.equal(res.statusCode, 429, sent)
    t.equal(res.headers['retry-after'], passed, sent)
  }
})

t.test('an upstream cursor outside 0..4102444800 is an upstream error, never passed on', async (t) => {
  for (const cursor of [-1, 4102444801, 1e20]) {
    const { app, tiktok } = await mockedGateway(t)
    tiktok.intercept(FOLLOWERS).reply(200, { ...OK_PAGE, data: { ...OK_PAGE.data, cursor } })
    t.equal((await app.inject('/v1/users/someone/followers')).statusCode, 502, String(cursor))
  }
})

t.test('one decision loop: a renewed token, a waited-out Retry-After and a 5xx retry are each one charged attempt', async (t) => {
  const agent = new MockAgent()
  agent.disableNetConnect()
  t.teardown(() => agent.close())
  const tiktok = agent.get(ORIGIN)
  tiktok.intercept({ path: '/v2/oauth/token/', method: 'POST' }).reply(200, { access_token: 'clt.mock', expires_in: 7200, token_type: 'Bearer' }).times(2)
  tiktok.intercept(FOLLOWERS).reply(401, apiError('access_token_invalid'))
  tiktok.intercept(FOLLOWERS).reply(429, apiError('rate_limit_exceeded'), { headers: { 'retry-after': '0' } })
  tiktok.intercept(FOLLOWERS).reply(500, apiError('internal_error'))
  tiktok.intercept(FOLLOWERS).reply(200, OK_PAGE)
  const { app } = await buildGateway(t, { ...LIVE, UPSTREAM_RETRIES: '1' }, { dispatcher: agent, clock: readingClock(Date.now) })
  t.equal((await app.inject('/v1/users/someone/followers')).statusCode, 200)
  t.match((await app.inject('/v1/quota')).json(), { team: { used: 4 } }, 'four research attempts sent, four charged; the token exchanges are free')
  agent.assertNoPendingInterceptors()
})

t.test("TikTok's own error text never carries the client secret or the access token into an answer or a log line", async (t) => {
  const agent = new MockAgent()
  agent.disableNetConnect()
  t.teardown(() => agent.close())
  const tiktok = agent.get(ORIGIN)
  tiktok.intercept({ path: '/v2/oauth/token/', method: 'POST' }).reply(200, { access_token: 'clt.echoed-token', expires_in: 7200, token_type: 'Bearer' }).persist()
  tiktok.intercept(FOLLOWERS).reply(400, apiError('invalid_params', 'bad token clt.echoed-token with live-secret'))
  tiktok.intercept(FOLLOWERS).reply(418, apiError('clt.echoed-token live-secret'))
  const { app, logs } = await buildGateway(t, LIVE, { dispatcher: agent, clock: readingClock(() => NOW) })
  const first = await app.inject('/v1/users/first/followers')
  t.match(first.json(), { status: 400, detail: /bad token \[redacted\] with \[redacted\]/ })
  const second = await app.inject('/v1/users/second/followers')
  t.match(second.json(), { status: 502, code: '[redacted] [redacted]' })
  for (const text of [first.body, second.body, ...logs]) t.notMatch(text, /clt\.echoed-token|live-secret/)
})
