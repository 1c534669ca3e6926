import t from 'tap'
import { sandboxGateway } from '../helpers/gateway.js'
import { readingClock } from '../helpers/clock.js'

t.test('a page fresh in memory is returned synchronously (no promise, timer or race); a miss or an expired page is loaded asynchronously', async (t) => {
  let now = Date.parse('2026-11-25T12:00:00Z')
  const { app, sandbox } = await sandboxGateway(t, { CACHE_TTL_LATEST_SECONDS: '60' }, {}, { clock: readingClock(() => now) })
  const query = { username: 'someone', maxCount: 5 }
  const caller = { consumer: 'anonymous', log: app.log }

  const miss = app.pages.followers(query, caller)
  t.ok(miss instanceof Promise, 'a miss is a promise')
  t.equal((await miss).outcome, 'miss')

  now += 10_000
  const hit = app.pages.followers(query, caller)
  t.notOk(hit instanceof Promise, 'a fresh hit is not')
  t.match(hit, { outcome: 'hit', ageSeconds: 10, freshSeconds: 50 })

  now += 60_000
  const expired = app.pages.followers(query, caller)
  t.ok(expired instanceof Promise, 'an expired page is reloaded asynchronously')
  t.equal((await expired).outcome, 'miss')
  t.equal(sandbox.stats.followerCalls, 2)
})
