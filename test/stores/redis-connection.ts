import pino from 'pino'
import type { Test } from 'tap'
import { RedisConnection } from '../../src/stores/redis.js'

/** A connected RedisConnection, closed when the test ends. */
export async function connect(t: Test, url: string, role = 'state'): Promise<RedisConnection> {
  const connection = new RedisConnection({ url, role, connectTimeoutMs: 1000, commandTimeoutMs: 1000, logger: pino({ level: 'silent' }) })
  t.teardown(() => connection.close())
  await connection.ready(2000)
  return connection
}
