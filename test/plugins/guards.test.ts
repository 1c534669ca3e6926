import { setTimeout as afterDueTimers } from 'node:timers/promises'
import t from 'tap'
import { sandboxGateway } from '../helpers/gateway.js'

t.test('a lagging event loop sheds load with a 503 problem and Retry-After', async (t) => {
  const { app, sandbox } = await sandboxGateway(t, { MAX_EVENT_LOOP_DELAY_MS: '1' })
  await app.ready()
  // Block the loop past under-pressure's first sample (at 1 s) and past the start-up grace (1.5 s), so that sample sees the lag.
  const until = Date.now() + 1600
  while (Date.now() < until);
  // A zero timer runs after the overdue sample timer, in the same timers phase.
  await afterDueTimers(0)
  const res = await app.inject('/v1/users/someone/followers')
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '10')
  t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:overloaded', status: 503 })
  t.equal(sandbox.stats.followerCalls, 0)
})

t.test('while shedding load, /healthz, /readyz and /metrics still answer', async (t) => {
  const { app } = await sandboxGateway(t, { MAX_EVENT_LOOP_DELAY_MS: '1' })
  await app.ready()
  const until = Date.now() + 1600
  while (Date.now() < until);
  await afterDueTimers(0)
  t.equal((await app.inject('/v1/users/someone/followers')).statusCode, 503, 'consumer requests are shed')
  for (const url of ['/healthz', '/readyz', '/metrics']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 200, url)
  }
  t.match((await app.inject('/metrics')).body, /gateway_http_request_duration_seconds_count\{method="GET",route="\/v1\/users\/:username\/followers",status="503"\} 1/)
})

t.test('the lag of start-up itself (compiling every schema) sheds no request', async (t) => {
  const { app, sandbox } = await sandboxGateway(t, { MAX_EVENT_LOOP_DELAY_MS: '1' })
  await app.ready()
  // Like the compilation on a slow machine: the first sample sees the lag, but it is start-up's.
  const until = Date.now() + 1100
  while (Date.now() < until);
  await afterDueTimers(0)
  t.equal((await app.inject('/v1/users/someone/followers')).statusCode, 200)
  t.equal(sandbox.stats.followerCalls, 1)
})
