import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import pino from 'pino'
import { RedisConnection } from '../../src/stores/redis.js'

/** The Redis the tests share: 127.0.0.1:6379 (CI starts one), or TEST_REDIS_URL. */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** Answers quickly whether the shared test Redis is there; `npm test` must not hang without one. */
async function answers(url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, connectTimeout: 500, commandTimeout: 500, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    await client.connect()
    return (await client.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    client.disconnect()
  }
}

const available = await answers(TEST_REDIS_URL)

/** `skip` option of a test that needs the shared Redis: false when it answers, else why the test is skipped. */
export const NEEDS_REDIS: false | string = available
  ? false
  : `needs a Redis server at ${TEST_REDIS_URL} (start redis-server, or set TEST_REDIS_URL); CI always provides one`

/** Whether redis-server can be started here (for the tests that stop and restart their own). */
const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0

export const NEEDS_REDIS_SERVER: false | string = hasRedisServer ? false : 'needs the redis-server binary (apt-get install redis-server) to start and kill a Redis of its own'

/** A key prefix of this test's own; every key under it is deleted when the test ends. */
export function testPrefix(t: Test, url = TEST_REDIS_URL): string {
  const prefix = `test-h-redis-${randomBytes(6).toString('hex')}:`
  t.teardown(() => deleteKeys(url, prefix))
  return prefix
}

async function deleteKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { connectTimeout: 500, commandTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      if (keys.length > 0) await client.del(...keys)
      cursor = next
    } while (cursor !== '0')
  } catch {
    // A test that killed its Redis has nothing left to clean.
  } finally {
    client.disconnect()
  }
}

async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

export interface OwnRedis {
  url: string
  /** Kills the server (SIGKILL), as a crash would. */
  kill(): Promise<void>
  /** Starts it again on the same port, empty. */
  start(): Promise<void>
  /** Stops it answering (SIGSTOP) while its connections stay open: a slow Redis. */
  pause(): void
  resume(): void
}

/** A redis-server of this test's own on a free port (never the shared one: tests kill it or fill its memory). */
export async function ownRedis(t: Test, args: string[] = []): Promise<OwnRedis> {
  const port = await freePort()
  let child: ChildProcess | undefined
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    await new Promise<void>((resolve, reject) => {
      child?.stdout?.on('data', (chunk) => {
        out += chunk
        if (out.includes('Ready to accept connections')) resolve()
      })
      child?.on('exit', (code) => reject(new Error(`redis-server exited ${code}: ${out}`)))
    })
  }
  const kill = async () => {
    // A killed server has a signalCode, not an exitCode: killing it twice (a test's kill, then its teardown) must not wait for a second exit.
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGKILL')
    await exited
  }
  await start()
  t.teardown(kill)
  return { url: `redis://127.0.0.1:${port}`, kill, start, pause: () => child?.kill('SIGSTOP'), resume: () => child?.kill('SIGCONT') }
}

/** The next `event` of a client; unlike events.once, the errors a reconnecting client emits do not reject it. */
export function next(emitter: { once(event: string, listener: () => void): unknown }, event: string): Promise<void> {
  return new Promise((resolve) => emitter.once(event, () => resolve()))
}

/** A connected RedisConnection, closed when the test ends. */
export async function connect(t: Test, url: string, role = 'state'): Promise<RedisConnection> {
  const connection = new RedisConnection({ url, role, connectTimeoutMs: 1000, commandTimeoutMs: 1000, logger: pino({ level: 'silent' }) })
  t.teardown(() => connection.close())
  await connection.ready(2000)
  return connection
}
