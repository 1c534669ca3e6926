import { Writable } from 'node:stream'
import t from 'tap'
import type { FastifyPluginAsync } from 'fastify'
import { loadConfig, SANDBOX_CREDENTIALS } from '../../src/config.js'
import { startSandbox } from '../../src/sandbox/sandbox.js'
import followersRoutes from '../../src/routes/followers.js'
import { bothPaths, LISTED_HOOKS, routeHooks, sameAnswer } from '../helpers/both-paths.js'
import { KEYS } from '../helpers/gateway.js'
import { manualClock, STOPPED_CLOCK } from '../helpers/clock.js'

const ALICE = { authorization: `Bearer ${KEYS.alice}` }
const BOB = { authorization: `Bearer ${KEYS.bob}` }

/** A URL of each page route; the followers' has a next page (Link). */
const PAGES = {
  followers: '/v1/users/Someone/followers?max_count=5',
  following: '/v1/users/Someone/following?max_count=5',
  profile: '/v1/users/Someone'
}

/** Load shedding on, as deployed (under-pressure adds its hook only then), with a bound no test reaches. */
const SHEDDING_ON = { MAX_EVENT_LOOP_DELAY_MS: '60000' }

t.test('a page route runs the hooks PAGE_ROUTE_HOOKS lists, no more, in that order: the early path stands in for each', async (t) => {
  const { app } = await bothPaths(t, SHEDDING_ON, STOPPED_CLOCK)
  for (const [route, url] of Object.entries(PAGES)) t.same(await routeHooks(app, url, ALICE), LISTED_HOOKS, route)
})

t.test('a hook added to a page route and not listed (an onSend that sets a header) fails the check', async (t) => {
  const withExtraHook: FastifyPluginAsync = async (app, options) => {
    app.addHook('onSend', function securityHeaders(_request, reply, payload, done) {
      reply.header('x-frame-options', 'DENY')
      done(null, payload)
    })
    await followersRoutes(app, options)
  }
  const { buildApp } = await t.mockImport<typeof import('../../src/app.js')>('../../src/app.js', {
    // tsx resolves the import of followers.js to the TypeScript file: the mock names that.
    '../../src/routes/followers.ts': { default: withExtraHook }
  })
  const sandbox = await startSandbox(SANDBOX_CREDENTIALS)
  t.teardown(() => sandbox.close())
  const config = loadConfig({ TIKTOK_API_BASE_URL: sandbox.url, GATEWAY_ALLOW_ANONYMOUS: 'true', LOG_LEVEL: 'silent', ...SHEDDING_ON })
  const app = await buildApp({ config, logStream: new Writable({ write: (_chunk, _encoding, done) => done() }) })
  t.teardown(() => app.close())
  const hooks = await routeHooks(app, '/v1/users/someone/followers', {})
  t.notSame(hooks, LISTED_HOOKS)
  t.same(hooks.onSend, [...(LISTED_HOOKS.onSend ?? []), 'securityHeaders'])
})

for (const [route, url] of Object.entries(PAGES)) {
  t.test(`${route}: every answer to a fresh page is the same from the router and from the early path`, async (t) => {
    const gateway = await bothPaths(t, { RATE_LIMIT_PER_MINUTE: '20' }, STOPPED_CLOCK)
    const { etag } = (await gateway.routed(url, ALICE)).headers
    const scenarios: Array<[string, Record<string, string>, number]> = [
      ['a fresh hit', ALICE, 200],
      ['X-API-Key', { 'x-api-key': KEYS.bob }, 200],
      ['If-None-Match with the ETag', { ...ALICE, 'if-none-match': String(etag) }, 304],
      ['If-None-Match with a weak ETag among others', { ...ALICE, 'if-none-match': `"other", W/${String(etag)}` }, 304],
      ['If-None-Match: *', { ...ALICE, 'if-none-match': '*' }, 304],
      ['If-None-Match with another ETag', { ...ALICE, 'if-none-match': '"other"' }, 200],
      ['no key', {}, 401],
      ['an unknown key', { authorization: 'Bearer not-a-key' }, 401],
      ['an Authorization of another scheme', { authorization: 'Basic YWxpY2U6eA==' }, 401]
    ]
    for (const [name, headers, status] of scenarios) {
      const sent = { ...headers, 'x-request-id': `trace-${route}` }
      const routed = await gateway.routed(url, sent)
      t.equal(routed.status, status, name)
      sameAnswer(t, routed, await gateway.early(t, url, sent), `${route}, ${name}`)
    }
  })
}

t.test('the rate limit refusal (429) is the same from both paths, each request counted once', async (t) => {
  const gateway = await bothPaths(t, { RATE_LIMIT_PER_MINUTE: '3' }, STOPPED_CLOCK)
  await gateway.routed(PAGES.followers, ALICE)
  const sent = { ...BOB, 'x-request-id': 'trace-429' }
  const counted = [await gateway.routed(PAGES.followers, sent), await gateway.early(t, PAGES.followers, sent), await gateway.routed(PAGES.followers, sent)]
  t.same(counted.map((answer) => [answer.status, answer.headers['x-ratelimit-remaining']]), [[200, '2'], [200, '1'], [200, '0']])
  const routed = await gateway.routed(PAGES.followers, sent)
  t.equal(routed.status, 429)
  t.equal(routed.headers['retry-after'], '50')
  sameAnswer(t, routed, await gateway.early(t, PAGES.followers, sent), '429')
  t.match(await gateway.app.inject('/metrics'), {
    body: /gateway_http_request_duration_seconds_count\{method="GET",route="\/v1\/users\/:username\/followers",status="429"\} 2/
  })
})

t.test('anonymous access, where allowed, is the same from both paths', async (t) => {
  const gateway = await bothPaths(t, { GATEWAY_ALLOW_ANONYMOUS: 'true' }, STOPPED_CLOCK)
  await gateway.routed(PAGES.profile, {})
  const sent = { 'x-request-id': 'trace-anonymous' }
  const routed = await gateway.routed(PAGES.profile, sent)
  t.equal(routed.status, 200)
  sameAnswer(t, routed, await gateway.early(t, PAGES.profile, sent), 'anonymous')
})

t.test('load shed (503) is the same from both paths: admit() sheds before it authenticates', async (t) => {
  const clock = manualClock()
  const load = { lagMs: 0 }
  const gateway = await bothPaths(t, { MAX_EVENT_LOOP_DELAY_MS: '100' }, clock, () => load.lagMs)
  await gateway.routed(PAGES.followers, ALICE)
  // As in test/plugins/guards.test.ts: past the start-up grace, the loop lags.
  await clock.advance(1500)
  load.lagMs = 1000
  for (const headers of [ALICE, { authorization: 'Bearer not-a-key' }]) {
    const sent = { ...headers, 'x-request-id': 'trace-shed' }
    const routed = await gateway.routed(PAGES.followers, sent)
    t.equal(routed.status, 503)
    t.equal(routed.headers['retry-after'], '10')
    sameAnswer(t, routed, await gateway.early(t, PAGES.followers, sent), `503, ${headers.authorization}`)
  }
})
