import t from 'tap'
import { Redis } from 'ioredis'
import { RedisCounterStore } from '../../src/stores/redis-counter-store.js'
import { NEEDS_REDIS_SERVER, next, ownRedis } from '../helpers/redis.js'
import { connect } from './redis-connection.js'

const NOW = Date.parse('2020-02-28T12:00:00Z')
const TOMORROW = Date.parse('2020-02-29T00:00:00Z')
const TEAM = [{ key: 'team', limit: 100 }]

t.test('while Redis is down a replica spends only its share of what was left, and adds those calls to the shared counter when Redis is back', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const redis = await ownRedis(t)
  const connection = await connect(t, redis.url)
  const store = new RedisCounterStore({ connection, keyPrefix: 'gw:', outageShare: 0.1, now: () => NOW })
  for (let i = 0; i < 10; i++) t.equal(await store.reserve(TEAM, TOMORROW), -1)

  const closed = next(connection.client, 'close')
  await redis.kill()
  await closed
  const during = await Promise.all(Array.from({ length: 12 }, () => store.reserve(TEAM, TOMORROW)))
  t.equal(during.filter((refused) => refused === -1).length, 9, 'a tenth of the 90 left')
  t.same(await store.read(['team']), [19], 'the report counts the outage calls')

  // The restarted Redis is empty (no persistence here), so the shared counter holds exactly the outage calls.
  const ready = next(connection.client, 'ready')
  await redis.start()
  await ready
  t.same(await store.read(['team']), [9])
  const direct = new Redis(redis.url)
  t.teardown(() => direct.disconnect())
  t.equal(await direct.get('gw:team'), '9')
  t.ok((await direct.pttl('gw:team')) > 0, 'the counter still ends with the day')
})

t.test('quota scripts run when Redis is out of memory under noeviction, where ordinary writes are refused', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const redis = await ownRedis(t, ['--maxmemory-policy', 'noeviction'])
  const direct = new Redis(redis.url)
  t.teardown(() => direct.disconnect())
  // Any limit below what an empty Redis uses makes it full (this is the test's own server).
  await direct.config('SET', 'maxmemory', '1')
  await t.rejects(direct.set('ordinary', '1'), /OOM/, 'Redis is full')
  await t.rejects(direct.eval("#!lua\nreturn redis.call('INCR', KEYS[1])", 1, 'script'), /OOM/, 'a script without allow-oom is refused')

  const connection = await connect(t, redis.url)
  const store = new RedisCounterStore({ connection, keyPrefix: 'gw:', outageShare: 0, now: () => NOW })
  t.equal(await store.reserve(TEAM, TOMORROW), -1)
  await store.raise('team', 5, TOMORROW)
  t.equal(await store.reserve(TEAM, TOMORROW), -1)
  t.equal(await direct.get('gw:team'), '6', 'counted in Redis, not in a local fallback (its share is 0)')
})
