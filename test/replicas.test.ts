import t, { type Test } from 'tap'
import type { Clock } from '../src/clock.js'
import { SANDBOX_CREDENTIALS } from '../src/config.js'
import { startSandbox } from '../src/sandbox/sandbox.js'
import { buildGateway, GATEWAY_API_KEYS, KEYS, type TestGateway } from './helpers/gateway.js'
import { STOPPED_CLOCK } from './helpers/clock.js'
import { NEEDS_REDIS, NEEDS_REDIS_SERVER, TEST_REDIS_URL, next, ownRedis, testPrefix } from './helpers/redis.js'

const ALICE = { authorization: `Bearer ${KEYS.alice}` }
const NO_RATE_LIMIT = { RATE_LIMIT_PER_MINUTE: '100000' }

/** Two gateways (replicas) on one Redis and one key prefix, in front of one sandbox that counts every upstream call once. */
async function twoReplicas(t: Test, env: NodeJS.ProcessEnv = {}, redisUrl = TEST_REDIS_URL, clock?: Clock) {
  const sandbox = await startSandbox({ ...SANDBOX_CREDENTIALS })
  t.teardown(() => sandbox.close())
  const shared = { TIKTOK_API_BASE_URL: sandbox.url, REDIS_URL: redisUrl, REDIS_KEY_PREFIX: testPrefix(t, redisUrl), ...env }
  const replica = () => buildGateway(t, shared, { clock })
  return { a: await replica(), b: await replica(), sandbox, replica }
}

/** The replica's Redis client (quota, rate limit and, here, pages). */
function redisOf(gateway: TestGateway) {
  const [state] = gateway.app.stores.redis
  if (state === undefined) throw new Error('the replica has no Redis')
  return state.client
}

const followers = (gateway: TestGateway, user: string, headers = {}) => gateway.app.inject({ url: `/v1/users/${user}/followers`, headers })

t.test('100 concurrent identical cold requests spread over two replicas make one upstream call', { skip: NEEDS_REDIS }, async (t) => {
  const { a, b, sandbox } = await twoReplicas(t, NO_RATE_LIMIT)
  const responses = await Promise.all(Array.from({ length: 100 }, (_, i) => followers(i % 2 ? a : b, 'popular')))
  t.same(new Set(responses.map((res) => res.statusCode)), new Set([200]))
  t.equal(sandbox.stats.followerCalls, 1)
  t.equal(new Set(responses.map((res) => res.body)).size, 1, 'every answer is the same page')
})

t.test('a page loaded through replica A is a HIT on replica B', { skip: NEEDS_REDIS }, async (t) => {
  const { a, b, sandbox } = await twoReplicas(t)
  const first = await followers(a, 'someone')
  t.equal(first.headers['x-cache'], 'MISS')
  const second = await followers(b, 'someone')
  t.equal(second.headers['x-cache'], 'HIT')
  t.equal(second.body, first.body)
  t.equal(second.headers.etag, first.headers.etag)
  t.equal(sandbox.stats.followerCalls, 1)
})

t.test('a team budget of 50 is one budget: 200 concurrent distinct cold requests over two replicas make exactly 50 upstream calls', { skip: NEEDS_REDIS }, async (t) => {
  const { a, b, sandbox } = await twoReplicas(t, { ...NO_RATE_LIMIT, DAILY_REQUEST_BUDGET: '50', UPSTREAM_RETRIES: '0' })
  const responses = await Promise.all(Array.from({ length: 200 }, (_, i) => followers(i % 2 ? a : b, `user${i}`)))
  t.equal(responses.filter((res) => res.statusCode === 200).length, 50)
  t.equal(responses.filter((res) => res.statusCode === 429).length, 150)
  t.equal(sandbox.stats.followerCalls, 50)
  const onA = (await a.app.inject('/v1/quota')).json()
  t.match(onA, { team: { limit: 50, used: 50, remaining: 0 } })
  t.same((await b.app.inject('/v1/quota')).json(), onA, '/v1/quota says the same on every replica')
})

t.test('the rate limit is one per consumer across replicas', { skip: NEEDS_REDIS }, async (t) => {
  const { a, b } = await twoReplicas(t, { GATEWAY_API_KEYS, RATE_LIMIT_PER_MINUTE: '3' }, TEST_REDIS_URL, STOPPED_CLOCK)
  t.equal((await followers(a, 'x', ALICE)).statusCode, 200)
  t.equal((await followers(b, 'x', ALICE)).statusCode, 200)
  t.equal((await followers(a, 'x', ALICE)).statusCode, 200)
  const limited = await followers(b, 'x', ALICE)
  t.equal(limited.statusCode, 429)
  t.match(limited.json(), { type: 'urn:tiktok-research-gateway:problem:consumer-rate-limited' })
})

t.test("the day's usage survives a restart of every replica", { skip: NEEDS_REDIS }, async (t) => {
  const { a, b, replica } = await twoReplicas(t, { DAILY_REQUEST_BUDGET: '10' })
  await followers(a, 'one')
  await followers(b, 'two')
  await a.app.close()
  await b.app.close()
  const restarted = await replica()
  t.match((await restarted.app.inject('/v1/quota')).json(), { team: { limit: 10, used: 2, remaining: 8 } })
  t.equal((await followers(restarted, 'one')).headers['x-cache'], 'HIT', 'and the pages are still there')
})

/** Resolves with the answer, or with 'hung' if there is none within `ms`. */
async function within(ms: number, request: Promise<{ statusCode: number }>): Promise<number | 'hung'> {
  let timer: NodeJS.Timeout | undefined
  const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), ms)))
  try {
    return await Promise.race([request.then((res) => res.statusCode), hung])
  } finally {
    clearTimeout(timer)
  }
}

t.test('Redis killed: hits are served, misses answered or refused within a second, /readyz and /metrics say so; Redis back: sharing resumes without a restart', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const redis = await ownRedis(t)
  const { a, b, sandbox } = await twoReplicas(t, { ...NO_RATE_LIMIT, DAILY_REQUEST_BUDGET: '100', REDIS_OUTAGE_BUDGET_SHARE: '0.1' }, redis.url)
  await followers(a, 'hot')
  t.equal((await followers(b, 'hot')).headers['x-cache'], 'HIT')

  const downA = next(redisOf(a), 'close')
  const downB = next(redisOf(b), 'close')
  await redis.kill()
  await Promise.all([downA, downB])

  t.equal(await within(1000, followers(a, 'hot')), 200, 'a hit on A')
  t.equal(await within(1000, followers(b, 'hot')), 200, 'a hit on B')
  const misses = await Promise.all(Array.from({ length: 30 }, (_, i) => within(1000, followers(i % 2 ? a : b, `cold${i}`))))
  t.notOk(misses.includes('hung'), 'no request hangs')
  // A last saw 1 of 100 spent, so it may make 9 calls; B never counted, so it takes a tenth of the 100.
  t.equal(misses.filter((status) => status === 200).length, 9 + 10, 'each replica spends only its share alone')
  t.ok(misses.every((status) => status === 200 || status === 503), 'the rest are refused cleanly')
  const refused = await followers(a, 'onemore')
  t.equal(refused.statusCode, 503, 'refused for want of Redis, not as a day spent (a 429 until midnight)')
  t.equal(refused.headers['retry-after'], '5')
  t.match(refused.json(), { type: 'urn:tiktok-research-gateway:problem:shared-state-unavailable' })
  t.equal(sandbox.stats.followerCalls, 1 + 19)

  t.equal((await a.app.inject('/healthz')).statusCode, 200)
  const ready = await a.app.inject('/readyz')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'degraded', redis: 'unavailable' })
  t.match((await a.app.inject('/metrics')).body, /gateway_redis_up\{role="state"\} 0/)
  t.equal(a.logs.filter((line) => line.includes('Redis is unavailable')).length, 1, 'one log line for the outage, not one per request')

  const upA = next(redisOf(a), 'ready')
  const upB = next(redisOf(b), 'ready')
  await redis.start()
  await Promise.all([upA, upB])
  t.match((await a.app.inject('/metrics')).body, /gateway_redis_up\{role="state"\} 1/)
  t.same((await a.app.inject('/readyz')).json(), { status: 'ready' })
  t.equal(a.logs.filter((line) => line.includes('Redis is available again')).length, 1)
  // The restarted Redis is empty (no persistence in this test): each replica writes its tally of the day
  // again, on reconnecting and with its next script (here A's report, for an order that is sure).
  await a.app.inject('/v1/quota')
  t.match((await b.app.inject('/v1/quota')).json(), { team: { used: sandbox.stats.followerCalls } })
  t.equal((await followers(a, 'after')).headers['x-cache'], 'MISS')
  t.equal((await followers(b, 'after')).headers['x-cache'], 'HIT', 'a page loaded on A is a HIT on B again')
})

t.test('Redis slow (not answering, connections open): requests fall back after REDIS_COMMAND_TIMEOUT_MS instead of hanging; the calls made meanwhile reach the shared count once it answers', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const redis = await ownRedis(t)
  const { a, sandbox } = await twoReplicas(t, { ...NO_RATE_LIMIT, DAILY_REQUEST_BUDGET: '100', REDIS_OUTAGE_BUDGET_SHARE: '0.1', REDIS_COMMAND_TIMEOUT_MS: '200' }, redis.url)
  await followers(a, 'hot')
  redis.pause()
  t.teardown(() => redis.resume())
  t.equal(await within(3000, followers(a, 'hot')), 200, 'a hit')
  t.equal(await within(3000, followers(a, 'cold')), 200, 'a miss, within the outage share')
  t.equal(sandbox.stats.followerCalls, 2)
  redis.resume()
  // The reservation that timed out still ran when Redis woke; it wrote the tally the replica then wrote again, so the call counts once.
  const used = (await a.app.inject('/v1/quota')).json().team.used as number
  t.equal(used, 2, 'the call made while Redis was slow is counted in Redis, once')
  t.equal((await followers(a, 'after')).statusCode, 200)
  t.match((await a.app.inject('/v1/quota')).json(), { team: { used: used + 1 } }, 'and counting goes on in Redis')
})
