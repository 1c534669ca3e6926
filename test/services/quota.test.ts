import t, { type Test } from 'tap'
import { Quota } from '../../src/services/quota.js'
import { RedisCounterStore } from '../../src/stores/redis-counter-store.js'
import { connect, NEEDS_REDIS_SERVER, next, ownRedis } from '../helpers/redis.js'

const NOW = Date.parse('2020-02-28T12:00:00Z')
const now = () => NOW

/** A replica's quota on a Redis of the test's own, with a team budget of `teamBudget` and a 10% outage share; `kill` takes Redis away, `restart` brings it back empty. */
async function quotaOnRedis(t: Test, teamBudget: number) {
  const redis = await ownRedis(t)
  const connection = await connect(t, redis.url)
  const store = new RedisCounterStore({ connection, keyPrefix: 'gw:', outageShare: 0.1, now })
  const quota = new Quota({ store, teamBudget, consumerBudget: () => teamBudget, exportBudget: teamBudget, consumers: ['alice'], now })
  const kill = async () => {
    const closed = next(connection.client, 'close')
    await redis.kill()
    await closed
  }
  const restart = async () => {
    const ready = next(connection.client, 'ready')
    await redis.start()
    await ready
  }
  return { quota, kill, restart }
}

t.test('during a Redis outage a replica that spent its outage share answers 503 shared state unavailable, retry in seconds, not the 429 of a spent day', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const { quota, kill, restart } = await quotaOnRedis(t, 100)
  for (let i = 0; i < 10; i++) await quota.reserve('alice')
  await kill()
  for (let i = 0; i < 9; i++) await quota.reserve('alice')
  await t.rejects(quota.reserve('alice'), { code: 'GW_SHARED_STATE_UNAVAILABLE', statusCode: 503, retryAfterSeconds: 5 }, 'a tenth of the 90 left is spent')
  t.match(await quota.report('alice'), { team: { limit: 100, used: 19, remaining: 81 } }, 'while most of the budget is left')
  await restart()
  await quota.reserve('alice')
  t.match(await quota.report('alice'), { team: { used: 20 } }, 'Redis back: calls are reserved there again')
})

t.test('during a Redis outage a budget that was spent when Redis last answered is still the 429 of a spent day, until 00:00 UTC', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const { quota, kill, restart } = await quotaOnRedis(t, 10)
  for (let i = 0; i < 10; i++) await quota.reserve('alice')
  await kill()
  const spent = { code: 'GW_DAILY_QUOTA_EXHAUSTED', statusCode: 429, retryAfterSeconds: 12 * 3600 }
  await t.rejects(quota.reserve('alice'), spent)
  await restart()
  await t.rejects(quota.reserve('alice'), spent, 'and still once Redis is back empty: the replica wrote its tally again')
})
