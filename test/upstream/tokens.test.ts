import t from 'tap'
import { sandboxGateway } from '../helpers/gateway.js'

t.test('many requests, sequential and concurrent, share one token exchange', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  for (let i = 0; i < 5; i++) t.equal((await app.inject(`/v1/users/user${i}/followers`)).statusCode, 200)
  await Promise.all(Array.from({ length: 20 }, (_, i) => app.inject(`/v1/users/other${i}/followers`)))
  t.equal(sandbox.stats.tokenExchanges, 1)
  t.equal(sandbox.stats.followerCalls, 25)
})

t.test('the token is renewed within its margin before expires_in, not after', async (t) => {
  let now = Date.parse('2026-11-25T10:00:00Z')
  const { app, sandbox } = await sandboxGateway(t, {}, { tokenTtlSeconds: 7200 }, () => now)
  await app.inject('/v1/users/a/followers')
  now += 6800_000
  await app.inject('/v1/users/b/followers')
  t.equal(sandbox.stats.tokenExchanges, 1, 'still valid outside the 300 s margin')
  now += 150_000
  const res = await app.inject('/v1/users/c/followers')
  t.equal(res.statusCode, 200)
  t.equal(sandbox.stats.tokenExchanges, 2, 'renewed 250 s before expiry')
  t.equal(sandbox.stats.followerCalls, 3, 'no call was refused for an expired token')
})

t.test('a short-lived token gets a proportionally short margin', async (t) => {
  let now = Date.parse('2026-11-25T10:00:00Z')
  const { app, sandbox } = await sandboxGateway(t, {}, { tokenTtlSeconds: 100 }, () => now)
  await app.inject('/v1/users/a/followers')
  now += 85_000
  await app.inject('/v1/users/b/followers')
  t.equal(sandbox.stats.tokenExchanges, 1, 'a tenth of 100 s is the margin')
  now += 10_000
  await app.inject('/v1/users/c/followers')
  t.equal(sandbox.stats.tokenExchanges, 2)
})

t.test('a revoked token is dropped, exchanged once and the call retried once', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  await app.inject('/v1/users/a/followers')
  sandbox.revokeTokens()
  const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => app.inject(`/v1/users/u${i}/followers`)))
  t.ok(responses.every((res) => res.statusCode === 200))
  t.equal(sandbox.stats.tokenExchanges, 2, 'one renewal shared by every caller that saw the 401')
  t.equal(sandbox.stats.followerCalls, 1 + 10 + 10, 'each refused call was retried once')
})
