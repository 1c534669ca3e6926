import t from 'tap'
import pino from 'pino'
import { Redis } from 'ioredis'
import { loadConfig } from '../../src/config.js'
import { openStores } from '../../src/stores/open-stores.js'
import { NEEDS_REDIS_SERVER, next, ownRedis } from '../helpers/redis.js'
import { storedPage, T0 } from '../contracts/page-store.js'
import { readingClock } from '../helpers/clock.js'

const DEADLINE_MS = 5000

t.test('a lock command that Redis runs after its client gave up holds the page a few heartbeats, not the deadline: the other replica loads it', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const redis = await ownRedis(t)
  const config = loadConfig({ REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '200', REQUEST_DEADLINE_MS: String(DEADLINE_MS) })
  const replica = async () => {
    const stores = await openStores({ config, logger: pino({ level: 'silent' }), clock: readingClock(() => T0), onCacheWriteError: () => {} })
    t.teardown(() => stores.close())
    return stores.pages
  }
  const [a, b] = [await replica(), await replica()]
  const probe = new Redis(redis.url)
  t.teardown(() => probe.disconnect())
  await next(probe, 'ready')

  // Writes wait (the lock's SET among them) while reads are answered: A's SET times out, and A loads alone.
  await probe.call('CLIENT', 'PAUSE', '10000', 'WRITE')
  t.equal((await a.fetch('k', async () => storedPage(T0, 'alone'))).outcome, 'miss')
  await probe.call('CLIENT', 'UNPAUSE')
  const lock = 'tiktok-gw:page:v1:lock:k'
  t.ok((await probe.pttl(lock)) > 0, "A's late SET left a lock that nobody holds")

  const started = performance.now()
  const onB = await b.fetch('k', async () => storedPage(T0, 'b'))
  t.equal(onB.outcome, 'miss')
  t.ok(performance.now() - started < DEADLINE_MS / 2, 'B took the page over well before its deadline')
})
