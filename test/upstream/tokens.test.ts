import t from 'tap'
import { sandboxGateway } from '../helpers/gateway.js'

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
    const { app, sandbox } = await sandboxGateway(t, {}, { tokenTtlSeconds: ttl }, () => now)
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
