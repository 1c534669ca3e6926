import { setTimeout as afterDueTimers } from 'node:timers/promises'
import t from 'tap'
import { sandboxGateway } from '../helpers/gateway.js'

t.test('a lagging event loop sheds load with a 503 problem and Retry-After', async (t) => {
  const { app, sandbox } = await sandboxGateway(t, { MAX_EVENT_LOOP_DELAY_MS: '1' })
  await app.ready()
  // Block the loop past under-pressure's first sample (at 1 s), so that sample sees the lag.
  const until = Date.now() + 1100
  while (Date.now() < until);
  // A zero timer runs after the overdue sample timer, in the same timers phase.
  await afterDueTimers(0)
  const res = await app.inject('/v1/users/someone/followers')
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '10')
  t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:overloaded', status: 503 })
  t.equal(sandbox.stats.followerCalls, 0)
})
