/**
 * Benchmarks of the gateway against baselines measured in the same run, on loopback only. Every
 * server runs in a process of its own and the load generator in another (bench/stack.ts).
 * Variants alternate (A B C A B C …) so that drift of the machine hits each alike; each figure is
 * the median over rounds.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cpus } from 'node:os'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { Agent, request } from 'undici'
import { loadConfig, SANDBOX_CREDENTIALS } from '../src/config.js'
import { startSandbox } from '../src/sandbox/sandbox.js'
import { exportBench } from './export.js'
import type { LoadResult, LoadSpec } from './load.js'
import { AUTH, onLoadCore, startGateway, startServer, startStack, type ServerProcess } from './stack.js'

export interface BenchOptions {
  quick: boolean
  /** Override the rounds of each alternating scenario, and the seconds of load in each. */
  rounds?: number
  seconds?: number
  /** Another checkout of the project: its gateway joins the cache-hit scenario as "gateway hit (before)". */
  against?: string
}

const LOAD = fileURLToPath(new URL('./load.ts', import.meta.url))
const HIT_PATH = '/v1/users/benchmark/followers?max_count=100'

function settings({ quick, rounds, seconds }: BenchOptions) {
  return quick
    ? { rounds: rounds ?? 2, seconds: seconds ?? 1, coalesced: 1000, memoryBudget: 4 * 1024 * 1024, l2Pages: 200, exportUser: 'many2000' }
    : { rounds: rounds ?? 5, seconds: seconds ?? 6, coalesced: 1000, memoryBudget: 32 * 1024 * 1024, l2Pages: 2000, exportUser: 'many1000000' }
}

/** Runs autocannon in a child process. */
export function load(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(...onLoadCore(process.execPath, ['--import=tsx', LOAD, JSON.stringify(spec)]), { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (chunk) => (out += chunk))
    child.on('error', reject)
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as LoadResult) : reject(new Error(`load generator exited ${code}`))))
  })
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const at = (i: number): number => sorted[i] ?? NaN
  return sorted.length % 2 ? at(mid) : (at(mid - 1) + at(mid)) / 2
}

export interface VariantFigures {
  requestsPerSecond: number
  /** Each round's req/s, in order, so that two variants compare round by round (runs made seconds apart). */
  roundsPerSecond: number[]
  p50: number
  p99: number
  /** Server CPU (user + system) per response, in microseconds; undefined for a server in this process. */
  cpuPerRequestUs?: number
  /**
   * The share of its core the server used (CPU per response x req/s, median of the rounds): well
   * under 1, something else (the load generator, the upstream) set the pace, and req/s says little of the server.
   */
  serverBusy?: number
  /** Responses that were errors or not 2xx, over every round: must be 0. */
  failures: number
}

interface Variant {
  spec: (round: number) => LoadSpec
  /** The process answering, when its CPU is to be measured. */
  server?: ServerProcess
}

/** Measures each variant `rounds` times, alternating, and keeps the median of each figure. */
async function alternate(rounds: number, variants: Record<string, Variant>): Promise<Record<string, VariantFigures>> {
  const runs = new Map<string, Array<LoadResult & { cpuUs?: number }>>(Object.keys(variants).map((name) => [name, []]))
  for (let round = 0; round < rounds; round++) {
    for (const [name, { spec, server }] of Object.entries(variants)) {
      const before = await server?.cpu()
      const result = await load(spec(round))
      const after = await server?.cpu()
      runs.get(name)?.push({ ...result, cpuUs: before === undefined || after === undefined ? undefined : (after - before) / result.responses })
    }
  }
  return Object.fromEntries(
    [...runs].map(([name, results]) => {
      const roundsPerSecond = results.map((r) => r.requestsPerSecond)
      // Each round's CPU per response, when the server is a process of its own.
      const cpu = results.every((r) => r.cpuUs !== undefined) ? results.map((r) => r.cpuUs ?? NaN) : undefined
      const figures: VariantFigures = {
        requestsPerSecond: median(roundsPerSecond),
        roundsPerSecond,
        p50: median(results.map((r) => r.p50)),
        p99: median(results.map((r) => r.p99)),
        cpuPerRequestUs: cpu && median(cpu),
        serverBusy: cpu && median(cpu.map((us, round) => (us * (roundsPerSecond[round] ?? NaN)) / 1e6)),
        failures: results.reduce((sum, r) => sum + r.errors + r.non2xx, 0)
      }
      return [name, figures]
    })
  )
}

export async function cacheHit(opts: BenchOptions) {
  const { rounds, seconds } = settings(opts)
  const stack = await startStack()
  const hit = await fetch(stack.url + HIT_PATH, { headers: AUTH })
  const body = Buffer.from(await hit.arrayBuffer())
  // What a hit sends beyond what every answer has (Fastify adds the type and length, Node the rest).
  const OWN = ['content-type', 'content-length', 'date', 'connection', 'keep-alive']
  const hitHeaders = Object.fromEntries([...hit.headers].filter(([name]) => !OWN.includes(name)))
  const bare = await startServer('bare', { body })
  const bareLogged = await startServer('bare-logged', { body })
  const bareHeaders = await startServer('bare-headers', { body, headers: hitHeaders })
  const before = opts.against === undefined ? undefined : await startStack({}, {}, opts.against)
  if (before) await fetch(before.url + HIT_PATH, { headers: AUTH })
  // Every server gets the same request, the consumer key included: the baselines parse what the gateway parses.
  const spec = (url: string) => () => ({ url, connections: 50, durationSeconds: seconds, headers: AUTH })
  try {
    const figures = await alternate(rounds, {
      'gateway hit': { spec: spec(stack.url + HIT_PATH), server: stack.gateway },
      ...(before && { 'gateway hit (before)': { spec: spec(before.url + HIT_PATH), server: before.gateway } }),
      'bare Fastify': { spec: spec(bare.url + '/page'), server: bare },
      'bare Fastify + access line': { spec: spec(bareLogged.url + '/page'), server: bareLogged },
      "bare Fastify + a hit's headers": { spec: spec(bareHeaders.url + '/page'), server: bareHeaders }
    })
    return { pageBytes: body.length, upstreamCalls: stack.sandbox.stats.followerCalls, figures }
  } finally {
    await Promise.all([stack.close(), bare.close(), bareLogged.close(), bareHeaders.close(), before?.close()])
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
      gateway: {
        spec: (round) => ({ url: stack.url, connections: 1, durationSeconds: seconds, headers: AUTH, distinct: { kind: 'gateway', prefix: `g${round}_` } }),
        server: stack.gateway
      },
      'sandbox direct': {
        spec: (round) => ({
          url: stack.sandbox.url,
          connections: 1,
          durationSeconds: seconds,
          headers: { authorization: `Bearer ${token.access_token}`, 'content-type': 'application/json' },
          distinct: { kind: 'upstream', prefix: `d${round}_` }
        })
      }
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
export async function replicas(opts: BenchOptions) {
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
    const spec = (server: ServerProcess) => ({ spec: () => ({ url: server.url + HIT_PATH, connections: 50, durationSeconds: seconds, headers: AUTH }), server })
    const l1 = await alternate(rounds, { 'one replica, in memory': spec(memory), 'replica A on Redis': spec(a) })

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
    await Promise.all([memory.close(), a.close(), b.close()])
    await sandbox.close()
    await deleteKeys(prefix)
  }
}

/**
 * The server's memory once a full GC no longer frees anything: objects that only a finalizer
 * releases go on a GC after the finalizer ran, in a later turn of the server's event loop.
 */
async function settledMemory(server: ServerProcess): Promise<NodeJS.MemoryUsage> {
  let last = await server.memory()
  for (let i = 0; i < 5; i++) {
    await sleep(100)
    const again = await server.memory()
    if (again.heapUsed >= last.heapUsed * 0.99) return again
    last = again
  }
  return last
}

/**
 * Fills a gateway's cache to 1.5x its budget with pages of `maxCount` followers; measures the
 * gateway process, settled after full GCs, against the same process warmed up: a few misses and
 * many hits compile both paths first, so that the growth is what the cache holds.
 */
export async function memory(opts: BenchOptions, maxCount: number) {
  const { memoryBudget } = settings(opts)
  const stack = await startStack({ CACHE_MAX_BYTES: String(memoryBudget) })
  // `many<N>` users have N followers, so that every page holds maxCount of them (others have 40 to 300).
  const page = (n: number) => `${stack.url}/v1/users/many${n}/followers?max_count=${maxCount}`
  const requestAll = async (paths: (i: number) => string, count: number) => {
    let next = 0
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < count) {
          const response = await request(paths(next++), { headers: AUTH })
          await response.body.dump()
        }
      })
    )
  }
  try {
    const pageBytes = Buffer.byteLength(await (await fetch(page(1000), { headers: AUTH })).text())
    const pages = Math.ceil((1.5 * memoryBudget) / pageBytes)
    // The warm-up's pages, 0.5% of the budget, are counted before and evicted by the fill.
    await requestAll((i) => page(1001 + i), Math.ceil(pages / 300))
    await requestAll(() => page(1000), 2000)
    const before = await settledMemory(stack.gateway)
    await requestAll((i) => page(100_000 + i), pages)
    const after = await settledMemory(stack.gateway)
    return {
      maxCount,
      budgetBytes: memoryBudget,
      pageBytes,
      pagesRequested: pages,
      rssGrowthBytes: after.rss - before.rss,
      heapAndBuffersGrowthBytes: after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers
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
    memory: [await memory(opts, 10), await memory(opts, 100)],
    cacheHit: await cacheHit(opts),
    coldMiss: await coldMiss(opts),
    coalescing: await coalescing(opts),
    replicas: await replicas(opts),
    // The whole list fits the first gateway's cache (about 66 MB of pages for a million), so that the warm export is read
    // from it; the second runs with the default cache, the memory a deployment holds.
    export: await exportBench({
      username: settings(opts).exportUser,
      cacheBytes: 128 * 1024 * 1024,
      smallCacheBytes: loadConfig({}).cache.maxBytes,
      compiled: !opts.quick
    })
  }
}

export type BenchResults = Awaited<ReturnType<typeof runBench>>
