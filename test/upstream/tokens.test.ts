import { setImmediate } from 'node:timers/promises'
import pino from 'pino'
import t, { type Test } from 'tap'
import { MockAgent } from 'undici'
import { loadConfig } from '../../src/config.js'
import { traitsOf } from '../../src/errors.js'
import { ResearchApi } from '../../src/upstream/research-api.js'
import { systemClock } from '../../src/clock.js'
import { buildGateway, sandboxGateway } from '../helpers/gateway.js'
import { readingClock } from '../helpers/clock.js'

t.test('many requests, sequential and concurrent, share one token exchange', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  for (let i = 0; i < 5; i++) t.equal((await app.inject(`/v1/users/user${i}/followers`)).statusCode, 200)
  await Promise.all(Array.from({ length: 20 }, (_, i) => app.inject(`/v1/users/other${i}/followers`)))
  t.equal(sandbox.stats.tokenExchanges, 1)
  t.equal(sandbox.stats.followerCalls, 25)
})

// The margin is a tenth of expires_in, at most 300 s: renewal falls inside it, never after expiry.
for (const { ttl, stillValidAfter, renewedAfter } of [
  { ttl: 7200, stillValidAfter: 6800, renewedAfter: 6950 },
  { ttl: 100, stillValidAfter: 85, renewedAfter: 95 }
]) {
  t.test(`a ${ttl} s token is renewed within its margin before expiry, not after`, async (t) => {
    let now = Date.parse('2026-11-25T10:00:00Z')
    const { app, sandbox } = await sandboxGateway(t, {}, { tokenTtlSeconds: ttl }, { clock: readingClock(() => now) })
    await app.inject('/v1/users/a/followers')
    now += stillValidAfter * 1000
    await app.inject('/v1/users/b/followers')
    t.equal(sandbox.stats.tokenExchanges, 1, `still used ${stillValidAfter} s in`)
    now += (renewedAfter - stillValidAfter) * 1000
    t.equal((await app.inject('/v1/users/c/followers')).statusCode, 200)
    t.equal(sandbox.stats.tokenExchanges, 2, `renewed ${ttl - renewedAfter} s before expiry`)
    t.equal(sandbox.stats.followerCalls, 3, 'no call was refused for an expired token')
  })
}

t.test('a revoked token is dropped, exchanged once and the call retried once', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  await app.inject('/v1/users/a/followers')
  sandbox.revokeTokens()
  const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => app.inject(`/v1/users/u${i}/followers`)))
  t.ok(responses.every((res) => res.statusCode === 200))
  t.equal(sandbox.stats.tokenExchanges, 2, 'one renewal shared by every caller that saw the 401')
  t.equal(sandbox.stats.followerCalls, 1 + 10 + 10, 'each refused call was retried once')
})

const ORIGIN = 'https://open.tiktokapis.com'
const TOKEN = { path: '/v2/oauth/token/', method: 'POST' }
const ISSUED = { access_token: 'clt.mock', expires_in: 7200, token_type: 'Bearer' }
const LIVE = { TIKTOK_CLIENT_KEY: 'live-key', TIKTOK_CLIENT_SECRET: 'live-secret', GATEWAY_ALLOW_ANONYMOUS: 'true' }

function mockedTikTok(t: Test) {
  const agent = new MockAgent()
  agent.disableNetConnect()
  t.teardown(() => agent.close())
  return { agent, tiktok: agent.get(ORIGIN) }
}

t.test('a 429 or 5xx from the token endpoint is TikTok limiting or failing (429 or 503 with Retry-After), not rejected credentials, and readiness stays', async (t) => {
  const cases = [
    { reply: [429, { error: 'rate_limit_exceeded', error_description: 'slow down', log_id: 'L1' }, { 'retry-after': '45' }], status: 429, kind: 'rate-limited', retryAfter: '45' },
    { reply: [429, { error: 'rate_limit_exceeded' }, {}], status: 429, kind: 'rate-limited', retryAfter: '60' },
    { reply: [503, 'upstream connect error', { 'retry-after': '20' }], status: 503, kind: 'upstream-unavailable', retryAfter: '20' }
  ] as const
  for (const { reply, status, kind, retryAfter } of cases) {
    const { agent, tiktok } = mockedTikTok(t)
    const [code, body, headers] = reply
    // A 5xx is retried (UPSTREAM_RETRIES=2): every attempt fails the same way.
    tiktok.intercept(TOKEN).reply(code, body, { headers }).times(code >= 500 ? 3 : 1)
    const { app } = await buildGateway(t, LIVE, { dispatcher: agent })
    const res = await app.inject('/v1/users/someone/followers')
    t.equal(res.statusCode, status, `token ${code}`)
    t.match(res.json(), { type: `urn:tiktok-research-gateway:problem:${kind}` })
    t.equal(res.headers['retry-after'], retryAfter)
    t.equal((await app.inject('/readyz')).statusCode, 200, 'a limit or an outage is no reason to leave the load balancer')
    agent.assertNoPendingInterceptors()
  }
})

t.test('rejected credentials make the gateway unready until a background exchange succeeds, with no consumer request', async (t) => {
  const { agent, tiktok } = mockedTikTok(t)
  tiktok.intercept(TOKEN).reply(401, { error: 'invalid_client', error_description: 'bad secret', log_id: 'L2' })
  tiktok.intercept(TOKEN).reply(200, ISSUED)
  const api = new ResearchApi({
    ...loadConfig({ ...LIVE, UPSTREAM_RETRIES: '0' }).upstream,
    logger: pino({ level: 'silent' }),
    dispatcher: agent,
    clock: systemClock,
    tokenRetryMs: 1
  })
  t.teardown(() => api.close())
  const context = { log: pino({ level: 'silent' }), charge: async () => {} }
  await t.rejects(api.queryUserFollowers({ username: 'a', max_count: 1 }, context), { code: 'GW_CREDENTIALS_REJECTED' })
  t.equal(traitsOf(api.tokenFailure).unready, true)
  // The background retry takes the second intercept; readiness reads the outcome.
  while (api.tokenFailure !== undefined) await setImmediate()
  agent.assertNoPendingInterceptors()
})
