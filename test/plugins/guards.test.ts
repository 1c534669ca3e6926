import t, { type Test } from 'tap'
import { manualClock } from '../helpers/clock.js'
import { sandboxGateway } from '../helpers/gateway.js'

/** A gateway whose load signal the test sets, on a clock it moves: no test blocks the event loop. */
async function underLoad(t: Test) {
  const load = { lagMs: 0 }
  const clock = manualClock()
  const gateway = await sandboxGateway(t, { MAX_EVENT_LOOP_DELAY_MS: '100' }, {}, { clock, eventLoopDelay: () => load.lagMs })
  await gateway.app.ready()
  return { ...gateway, clock, load }
}

/** Past the start-up grace: the sample after the one that saw the start-up lag. */
const GRACE_MS = 1500

t.test('a lagging event loop sheds load with a 503 problem and Retry-After', async (t) => {
  const { app, sandbox, clock, load } = await underLoad(t)
  await clock.advance(GRACE_MS)
  load.lagMs = 101
  const res = await app.inject('/v1/users/someone/followers')
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '10')
  t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:overloaded', status: 503, detail: /eventLoopDelay: 101/ })
  t.equal(sandbox.stats.followerCalls, 0)
  load.lagMs = 100
  t.equal((await app.inject('/v1/users/someone/followers')).statusCode, 200, 'a lag at the limit is no overload')
})

t.test('while shedding load, /healthz, /readyz and /metrics still answer', async (t) => {
  const { app, clock, load } = await underLoad(t)
  await clock.advance(GRACE_MS)
  load.lagMs = 1000
  t.equal((await app.inject('/v1/users/someone/followers')).statusCode, 503, 'consumer requests are shed')
  for (const url of ['/healthz', '/readyz', '/metrics']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 200, url)
  }
  t.match((await app.inject('/metrics')).body, /gateway_http_request_duration_seconds_count\{method="GET",route="\/v1\/users\/:username\/followers",status="503"\} 1/)
})

t.test('the lag of start-up itself (compiling every schema) sheds no request', async (t) => {
  const { app, sandbox, clock, load } = await underLoad(t)
  // Like the compilation on a slow machine: the first sample sees the lag, but it is start-up's.
  load.lagMs = 1000
  await clock.advance(GRACE_MS - 1)
  t.equal((await app.inject('/v1/users/someone/followers')).statusCode, 200)
  t.equal(sandbox.stats.followerCalls, 1)
  await clock.advance(1)
  t.equal((await app.inject('/v1/users/other/followers')).statusCode, 503, 'shedding starts with the grace over')
})

t.test('MAX_EVENT_LOOP_DELAY_MS=0 never sheds', async (t) => {
  const clock = manualClock()
  const { app } = await sandboxGateway(t, { MAX_EVENT_LOOP_DELAY_MS: '0' }, {}, { clock, eventLoopDelay: () => 60_000 })
  await clock.advance(GRACE_MS)
  t.equal((await app.inject('/v1/users/someone/followers')).statusCode, 200)
})

t.test("under-pressure's sample of the lag is the default signal", async (t) => {
  const clock = manualClock()
  const { app } = await sandboxGateway(t, { MAX_EVENT_LOOP_DELAY_MS: '100' }, {}, { clock })
  await app.ready()
  await clock.advance(GRACE_MS)
  t.equal((await app.inject('/v1/users/someone/followers')).statusCode, 200)
  const sampled = app.memoryUsage()
  app.memoryUsage = () => ({ ...sampled, eventLoopDelay: 250 })
  t.equal((await app.inject('/v1/users/someone/followers')).statusCode, 503)
})
