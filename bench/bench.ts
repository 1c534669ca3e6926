/**
 * Benchmarks of the gateway against baselines measured in the same run, on loopback only.
 * Variants alternate (A B A B …) so that drift of the machine hits each alike; each figure is the
 * median over rounds.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { cpus } from 'node:os'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import pino from 'pino'
import { Redis } from 'ioredis'
import { Agent, request } from 'undici'
import { buildApp } from '../src/app.js'
import { loadConfig, SANDBOX_CREDENTIALS } from '../src/config.js'
import { startSandbox, type Faults } from '../src/sandbox/sandbox.js'
import { exportBench } from './export.js'
import type { LoadResult, LoadSpec } from './load.js'

export interface BenchOptions {
  quick: boolean
}

const LOAD = fileURLToPath(new URL('./load.ts', import.meta.url))
const CONSUMER_KEY = 'bench-consumer-key-0123456789'
export const AUTH = { authorization: `Bearer ${CONSUMER_KEY}` }
const HIT_PATH = '/v1/users/benchmark/followers?max_count=100'

function settings({ quick }: BenchOptions) {
  return quick
    ? { rounds: 2, seconds: 1, coalesced: 1000, memoryBudget: 4 * 1024 * 1024, l2Pages: 200, exportUser: 'many2000' }
    : { rounds: 3, seconds: 10, coalesced: 1000, memoryBudget: 32 * 1024 * 1024, l2Pages: 2000, exportUser: 'many1000000' }
}

/** Runs autocannon in a child process. */
export function load(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import=tsx', LOAD, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (chunk) => (out += chunk))
    child.on('error', reject)
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as LoadResult) : reject(new Error(`load generator exited ${code}`))))
  })
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const at = (i: number): number => sorted[i] ?? NaN
  return sorted.length % 2 ? at(mid) : (at(mid - 1) + at(mid)) / 2
}

export interface VariantFigures {
  requestsPerSecond: number
  p50: number
  p99: number
  /** Responses that were errors or not 2xx, over every round: must be 0. */
  failures: number
}

/** Measures each named spec `rounds` times, alternating, and keeps the median of each figure. */
async function alternate(rounds: number, variants: Record<string, (round: number) => LoadSpec>): Promise<Record<string, VariantFigures>> {
  const runs = new Map<string, LoadResult[]>(Object.keys(variants).map((name) => [name, []]))
  for (let round = 0; round < rounds; round++) {
    for (const [name, spec] of Object.entries(variants)) runs.get(name)?.push(await load(spec(round)))
  }
  return Object.fromEntries(
    [...runs].map(([name, results]) => [
      name,
      {
        requestsPerSecond: median(results.map((r) => r.requestsPerSecond)),
        p50: median(results.map((r) => r.p50)),
        p99: median(results.map((r) => r.p99)),
        failures: results.reduce((sum, r) => sum + r.errors + r.non2xx, 0)
      }
    ])
  )
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** Budgets and rate limits high enough, and no load shedding, so that the load measures the gateway, not its guards. */
const UNLIMITED = {
  RATE_LIMIT_PER_MINUTE: '1000000000',
  DAILY_REQUEST_BUDGET: '1000000000',
  CONSUMER_DAILY_BUDGET: '1000000000',
  MAX_EVENT_LOOP_DELAY_MS: '0'
}

/** A gateway in front of `upstreamUrl`, logging at info as deployed (to /dev/null). */
export async function startGateway(upstreamUrl: string, env: NodeJS.ProcessEnv = {}) {
  const config = loadConfig({ TIKTOK_API_BASE_URL: upstreamUrl, GATEWAY_API_KEYS: `bench:${CONSUMER_KEY}`, ...UNLIMITED, ...env })
  const gateway = await buildApp({ config, logStream: pino.destination({ dest: '/dev/null', sync: false }) })
  return { gateway, url: await gateway.listen({ host: '127.0.0.1', port: 0 }) }
}

/** The sandbox and a gateway in front of it. */
export async function startStack(env: NodeJS.ProcessEnv = {}, faults: Faults = {}) {
  const sandbox = await startSandbox({ ...SANDBOX_CREDENTIALS, faults })
  const { gateway, url } = await startGateway(sandbox.url, env)
  return {
    sandbox,
    url,
    gateway,
    async close() {
      await gateway.close()
      await sandbox.close()
    }
  }
}

async function cacheHit(opts: BenchOptions) {
  const { rounds, seconds } = settings(opts)
  const stack = await startStack()
  const quiet = await startStack({ LOG_LEVEL: 'warn' })
  const page = await fetch(stack.url + HIT_PATH, { headers: AUTH })
  const bytes = Buffer.from(await page.arrayBuffer())
  await fetch(quiet.url + HIT_PATH, { headers: AUTH })

  const bare = Fastify({ logger: false })
  bare.get('/page', (_request, reply) => reply.type('application/json; charset=utf-8').send(bytes))
  const bareUrl = await bare.listen({ host: '127.0.0.1', port: 0 })
  const plain = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': bytes.length })
    response.end(bytes)
  })
  const plainUrl = await listen(plain)

  const spec = (url: string, headers?: Record<string, string>) => () => ({ url, connections: 50, durationSeconds: seconds, headers })
  try {
    const figures = await alternate(rounds, {
      gateway: spec(stack.url + HIT_PATH, AUTH),
      'gateway, LOG_LEVEL=warn': spec(quiet.url + HIT_PATH, AUTH),
      'bare Fastify': spec(bareUrl + '/page'),
      'node:http': spec(plainUrl + '/page')
    })
    return { pageBytes: bytes.length, upstreamCalls: stack.sandbox.stats.followerCalls, figures }
  } finally {
    await Promise.all([stack.close(), quiet.close(), bare.close(), new Promise((resolve) => plain.close(resolve))])
  }
}

/** One connection, so that the figures are what the gateway adds to a request, not queueing. */
async function coldMiss(opts: BenchOptions) {
  const { rounds, seconds } = settings(opts)
  const stack = await startStack()
  const token = (await (
    await fetch(`${stack.sandbox.url}/v2/oauth/token/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_key: SANDBOX_CREDENTIALS.clientKey, client_secret: SANDBOX_CREDENTIALS.clientSecret, grant_type: 'client_credentials' })
    })
  ).json()) as { access_token: string }
  try {
    const figures = await alternate(rounds, {
      gateway: (round) => ({ url: stack.url, connections: 1, durationSeconds: seconds, headers: AUTH, distinct: { kind: 'gateway', prefix: `g${round}_` } }),
      'sandbox direct': (round) => ({
        url: stack.sandbox.url,
        connections: 1,
        durationSeconds: seconds,
        headers: { authorization: `Bearer ${token.access_token}`, 'content-type': 'application/json' },
        distinct: { kind: 'upstream', prefix: `d${round}_` }
      })
    })
    return { figures }
  } finally {
    await stack.close()
  }
}

/** N concurrent identical cold requests over real sockets: how many reach the upstream. */
async function coalescing(opts: BenchOptions) {
  const { coalesced } = settings(opts)
  const stack = await startStack()
  const agent = new Agent({ connections: coalesced })
  try {
    const statuses = await Promise.all(
      Array.from({ length: coalesced }, async () => {
        const response = await request(stack.url + HIT_PATH, { headers: AUTH, dispatcher: agent })
        await response.body.dump()
        return response.statusCode
      })
    )
    return {
      requests: coalesced,
      ok: statuses.filter((status) => status === 200).length,
      upstreamCalls: stack.sandbox.stats.followerCalls,
      tokenExchanges: stack.sandbox.stats.tokenExchanges
    }
  } finally {
    await agent.close()
    await stack.close()
  }
}

/** The Redis the replicas share: 127.0.0.1:6379, or BENCH_REDIS_URL. */
const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** Deletes every key under `prefix`; returns false when Redis does not answer. */
async function deleteKeys(prefix: string): Promise<boolean> {
  const redis = new Redis(BENCH_REDIS_URL, { connectTimeout: 500, maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => {})
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      if (keys.length > 0) await redis.del(...keys)
      cursor = next
    } while (cursor !== '0')
    return true
  } catch {
    return false
  } finally {
    redis.disconnect()
  }
}

async function get(url: string, dispatcher: Agent): Promise<{ status: number; cache: string | undefined }> {
  const response = await request(url, { headers: AUTH, dispatcher })
  await response.body.dump()
  return { status: response.statusCode, cache: response.headers['x-cache'] as string | undefined }
}

/**
 * Two replicas on one Redis against one replica in memory, all in front of one sandbox: a hot hit
 * (L1, in process memory), a hit from Redis (L2: loaded through A, first asked of B), and N
 * identical cold requests spread over both replicas.
 */
async function replicas(opts: BenchOptions) {
  const { rounds, seconds, coalesced, l2Pages } = settings(opts)
  const prefix = `bench-${randomBytes(4).toString('hex')}:`
  if (!(await deleteKeys(prefix))) return { skipped: `no Redis answers at ${BENCH_REDIS_URL}` }
  const sandbox = await startSandbox({ ...SANDBOX_CREDENTIALS })
  const memory = await startGateway(sandbox.url)
  const onRedis = { REDIS_URL: BENCH_REDIS_URL, REDIS_KEY_PREFIX: prefix }
  const a = await startGateway(sandbox.url, onRedis)
  const b = await startGateway(sandbox.url, onRedis)
  const agent = new Agent({ connections: coalesced })
  try {
    await get(memory.url + HIT_PATH, agent)
    await get(a.url + HIT_PATH, agent)
    const spec = (url: string) => () => ({ url: url + HIT_PATH, connections: 50, durationSeconds: seconds, headers: AUTH })
    const l1 = await alternate(rounds, { 'one replica, in memory': spec(memory.url), 'replica A on Redis': spec(a.url) })

    // Sequential pairs on one connection: B's first answer for a page comes from Redis, its second from memory.
    const page = (i: number) => `/v1/users/l2_${i}/followers?max_count=100`
    for (let i = 0; i < l2Pages; i++) await get(a.url + page(i), agent)
    const one = new Agent({ connections: 1 })
    const fromRedis: number[] = []
    const fromMemory: number[] = []
    let notHits = 0
    for (let i = 0; i < l2Pages; i++) {
      for (const times of [fromRedis, fromMemory]) {
        const started = performance.now()
        const { cache } = await get(b.url + page(i), one)
        times.push(performance.now() - started)
        if (cache !== 'HIT') notHits++
      }
    }
    await one.close()

    const before = sandbox.stats.followerCalls
    const statuses = await Promise.all(
      Array.from({ length: coalesced }, async (_, i) => (await get(`${(i % 2 ? a : b).url}/v1/users/coalesced/followers`, agent)).status)
    )
    return {
      l1,
      l2: { pages: l2Pages, notHits, p50FromRedis: median(fromRedis), p50FromMemory: median(fromMemory) },
      coalescing: { requests: coalesced, ok: statuses.filter((status) => status === 200).length, upstreamCalls: sandbox.stats.followerCalls - before }
    }
  } finally {
    await agent.close()
    await Promise.all([memory.gateway.close(), a.gateway.close(), b.gateway.close()])
    await sandbox.close()
    await deleteKeys(prefix)
  }
}

const collectGarbage = () => (globalThis as { gc?: () => void }).gc?.()

async function memory(opts: BenchOptions) {
  const { memoryBudget } = settings(opts)
  const stack = await startStack({ CACHE_MAX_BYTES: String(memoryBudget) })
  try {
    const pageBytes = Buffer.byteLength(await (await fetch(`${stack.url}/v1/users/m_probe/followers?max_count=100`, { headers: AUTH })).text())
    collectGarbage()
    const before = process.memoryUsage()
    const pages = Math.ceil((1.5 * memoryBudget) / pageBytes)
    let next = 0
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < pages) {
          const response = await request(`${stack.url}/v1/users/m${next++}/followers?max_count=100`, { headers: AUTH })
          await response.body.dump()
        }
      })
    )
    collectGarbage()
    const after = process.memoryUsage()
    return {
      budgetBytes: memoryBudget,
      pageBytes,
      pagesRequested: pages,
      rssGrowthBytes: after.rss - before.rss,
      heapAndBuffersGrowthBytes: after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers,
      afterGc: typeof (globalThis as { gc?: unknown }).gc === 'function'
    }
  } finally {
    await stack.close()
  }
}

export async function runBench(opts: BenchOptions) {
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    quick: opts.quick,
    // First, while the process's RSS is not yet inflated by the load scenarios.
    memory: await memory(opts),
    cacheHit: await cacheHit(opts),
    coldMiss: await coldMiss(opts),
    coalescing: await coalescing(opts),
    replicas: await replicas(opts),
    // The whole list fits the first gateway's cache (about 66 MB of pages for a million), not the second's.
    export: await exportBench({ username: settings(opts).exportUser, cacheBytes: 128 * 1024 * 1024, smallCacheBytes: 16 * 1024 * 1024, compiled: !opts.quick })
  }
}

export type BenchResults = Awaited<ReturnType<typeof runBench>>
