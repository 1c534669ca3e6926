import t, { type Test } from 'tap'
import type { Clock } from '../../src/clock.js'
import type { OutgoingHttpHeaders } from 'node:http'
import { request } from 'undici'
import { GATEWAY_API_KEYS, KEYS, sandboxGateway, type TestGateway } from '../helpers/gateway.js'
import { readingClock, STOPPED_CLOCK } from '../helpers/clock.js'
import { NEEDS_REDIS, TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'

const ALICE = { authorization: `Bearer ${KEYS.alice}` }
const PAGE = '/v1/users/Someone/followers?max_count=5'

/**
 * A listening gateway whose answers from the fast path of cache hits are counted: `fast()` says how
 * many answers it gave since the last call. app.inject() always takes the routed path.
 */
async function listening(t: Test, env: NodeJS.ProcessEnv = {}, clock?: Clock) {
  const gateway = await sandboxGateway(t, { GATEWAY_API_KEYS, LOG_LEVEL: 'info', ...env }, {}, { clock })
  const { fastHits } = gateway.app
  const serve = fastHits.serve.bind(fastHits)
  let answered = 0
  fastHits.serve = (req, res) => {
    const served = serve(req, res)
    if (served) answered++
    return served
  }
  const base = await gateway.app.listen({ host: '127.0.0.1', port: 0 })
  const get = async (url: string, headers: Record<string, string> = {}) => {
    const res = await request(`${base}${url}`, { headers })
    return { statusCode: res.statusCode, headers: res.headers, body: await res.body.text() }
  }
  const fast = () => {
    const count = answered
    answered = 0
    return count
  }
  return { ...gateway, get, fast }
}

/** A clock that does not move: two answers compared field by field must not straddle a second (x-ratelimit-reset, max-age). */

/** What must be equal between two answers to one request: all but the date, the connection's own headers and the rate count. */
const comparable = (headers: OutgoingHttpHeaders) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !['date', 'connection', 'keep-alive', 'x-ratelimit-remaining'].includes(name)))

/** The access lines, without the parts that differ between two requests (time, and of the duration all but its form: milliseconds to the microsecond). */
const accessLines = ({ logs }: TestGateway) =>
  logs
    .filter((line) => line.includes('"msg":"request"'))
    .map((line) => ({ ...JSON.parse(line), time: 0, ms: /"ms":\d+(\.\d{1,3})?,/.test(line) ? 'to the µs' : 'other' }) as Record<string, unknown>)

async function metric(gateway: TestGateway, series: string): Promise<number> {
  const text = (await gateway.app.inject('/metrics')).body
  return Number(text.split('\n').find((line) => line.startsWith(`${series} `))?.split(' ')[1] ?? 0)
}

const HIT_SERIES = 'gateway_cache_requests_total{outcome="hit"}'
const ROUTE_200 = 'gateway_http_request_duration_seconds_count{method="GET",route="/v1/users/:username/followers",status="200"}'

t.test('a fresh hit answered before the router is the routed hit: status, headers, body, access line and metrics', async (t) => {
  const gateway = await listening(t, {}, STOPPED_CLOCK)
  const headers = { ...ALICE, 'x-request-id': 'trace-1' }
  t.equal((await gateway.get(PAGE, headers)).headers['x-cache'], 'MISS')
  t.equal(gateway.fast(), 0, 'a URL is answered early only once the routed path validated and answered it')

  gateway.logs.length = 0
  const hits = await metric(gateway, HIT_SERIES)
  const counted = await metric(gateway, ROUTE_200)
  const routed = await gateway.app.inject({ url: PAGE, headers })
  const early = await gateway.get(PAGE, headers)
  t.equal(gateway.fast(), 1)

  t.equal(early.statusCode, routed.statusCode)
  t.equal(early.headers['x-cache'], 'HIT')
  t.same(comparable(early.headers), comparable(routed.headers))
  t.equal(Number(early.headers['x-ratelimit-remaining']), Number(routed.headers['x-ratelimit-remaining']) - 1, 'each counted once')
  t.equal(early.body, routed.body)
  const [routedLine, earlyLine, ...others] = accessLines(gateway).filter((line) => line.url !== '/metrics')
  t.same(earlyLine, routedLine)
  t.same(others, [])
  t.match(earlyLine, { reqId: 'trace-1', url: '/v1/users/Someone/followers?max_count=5', status: 200, ms: 'to the µs', consumer: 'alice' })
  t.equal(await metric(gateway, HIT_SERIES), hits + 2)
  t.equal(await metric(gateway, ROUTE_200), counted + 2)
})

t.test('a 304 for If-None-Match is the same from both paths', async (t) => {
  const gateway = await listening(t, {}, STOPPED_CLOCK)
  const { etag } = (await gateway.get(PAGE, ALICE)).headers
  const headers = { ...ALICE, 'x-request-id': 'trace-2', 'if-none-match': String(etag) }
  const routed = await gateway.app.inject({ url: PAGE, headers })
  const early = await gateway.get(PAGE, headers)
  t.equal(gateway.fast(), 1)
  t.equal(early.statusCode, 304)
  t.equal(routed.statusCode, 304)
  t.same(comparable(early.headers), comparable(routed.headers))
  t.equal(early.body, '')
  t.notOk('content-length' in early.headers)
})

t.test('a hit says how long it stays fresh once, in max-age, from both paths: with no Age, an HTTP cache would count its age twice', async (t) => {
  let now = Date.parse('2030-01-01T10:00:10Z')
  const gateway = await listening(t, { CACHE_TTL_LATEST_SECONDS: '120' }, readingClock(() => now))
  t.equal((await gateway.get(PAGE, ALICE)).headers['cache-control'], 'private, max-age=120')
  now += 30_000
  const routed = await gateway.app.inject({ url: PAGE, headers: ALICE })
  const early = await gateway.get(PAGE, ALICE)
  t.equal(gateway.fast(), 1)
  for (const hit of [routed, early]) {
    t.equal(hit.headers['x-cache'], 'HIT')
    t.equal(hit.headers['cache-control'], 'private, max-age=90')
    t.notOk('age' in hit.headers)
  }
})

t.test('an unvalidated URL and an expired page go to the router; a fresh page refused by admit() (no key, an unknown key) is refused early', async (t) => {
  let now = Date.parse('2030-01-01T10:00:10Z')
  const gateway = await listening(t, { CACHE_TTL_LATEST_SECONDS: '60' }, readingClock(() => now))
  await gateway.get(PAGE, ALICE)
  t.equal((await gateway.get(PAGE)).statusCode, 401)
  const wrong = await gateway.get(PAGE, { authorization: 'Bearer not-a-key' })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.equal(gateway.fast(), 2, 'the refusals are the pipeline\'s, on whichever path')
  t.equal((await gateway.get('/v1/users/Someone/followers?max_count=5x', ALICE)).statusCode, 400)
  t.equal(gateway.fast(), 0)
  t.equal((await gateway.get(PAGE, ALICE)).headers['x-cache'], 'HIT')
  t.equal(gateway.fast(), 1)
  now += 61_000
  const expired = await gateway.get(PAGE, ALICE)
  t.equal(expired.headers['x-cache'], 'MISS')
  t.equal(gateway.fast(), 0)
  t.equal(gateway.sandbox.stats.followerCalls, 2)
})

t.test('the rate limit counts each request once, whichever path answers it; the early path answers its own refusal', async (t) => {
  const gateway = await listening(t, { RATE_LIMIT_PER_MINUTE: '3' }, readingClock(() => Date.parse('2030-01-01T10:00:10Z')))
  const answers = []
  for (let i = 0; i < 4; i++) answers.push(await gateway.get(PAGE, ALICE))
  t.same(answers.map((res) => res.statusCode), [200, 200, 200, 429])
  t.same(answers.map((res) => res.headers['x-ratelimit-remaining']), ['2', '1', '0', '0'])
  t.equal(gateway.fast(), 3)
  const refused = answers[3]
  t.equal(refused?.headers['retry-after'], '50')
  t.equal(refused?.headers['x-ratelimit-reset'], '50')
  t.match(JSON.parse(refused?.body ?? '{}'), { type: 'urn:tiktok-research-gateway:problem:consumer-rate-limited' })
})

t.test('on Redis, a page held in process memory is answered early too: a hot hit waits on no Redis round trip', { skip: NEEDS_REDIS }, async (t) => {
  const gateway = await listening(t, { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: testPrefix(t) }, STOPPED_CLOCK)
  t.equal((await gateway.get(PAGE, ALICE)).headers['x-cache'], 'MISS')
  const hit = await gateway.get(PAGE, ALICE)
  t.equal(hit.headers['x-cache'], 'HIT')
  t.equal(hit.headers['x-ratelimit-remaining'], '598')
  t.equal(gateway.fast(), 1)
})
