/** `npm run bench [-- --quick]`: runs every scenario and prints the results as Markdown. */
import { runBench, type BenchResults, type VariantFigures } from './bench.js'

const ratio = (a: number, b: number): string => (a / b).toFixed(2)
const ms = (value: number): string => value.toFixed(3)
const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1)

function figuresTable(figures: Record<string, VariantFigures>): string[] {
  return [
    '| variant | req/s | p50 ms | p99 ms | failed responses |',
    '|---|---:|---:|---:|---:|',
    ...Object.entries(figures).map(([name, f]) => `| ${name} | ${Math.round(f.requestsPerSecond)} | ${ms(f.p50)} | ${ms(f.p99)} | ${f.failures} |`)
  ]
}

/** A variant's figures; every variant the report names was measured. */
function variant(figures: Record<string, VariantFigures>, name: string): VariantFigures {
  const found = figures[name]
  if (found === undefined) throw new Error(`no figures for ${name}`)
  return found
}

function replicaSummary({ replicas: r }: BenchResults): string[] {
  if ('skipped' in r) return [`| replicas on Redis | skipped: ${r.skipped} | | |`]
  const memory = variant(r.l1, 'one replica, in memory')
  const redis = variant(r.l1, 'replica A on Redis')
  return [
    `| replicas on Redis | L1 hit throughput, replica on Redis / one replica in memory | ${ratio(redis.requestsPerSecond, memory.requestsPerSecond)} | >= 0.95 |`,
    `| replicas on Redis | L2 hit (in Redis, not in memory): added latency at p50 | ${ms(r.l2.p50FromRedis - r.l2.p50FromMemory)} ms | <= 0.5 ms |`,
    `| replicas on Redis | upstream calls for ${r.coalescing.requests} identical cold requests over two replicas | ${r.coalescing.upstreamCalls} | 1 |`
  ]
}

function replicaSection({ replicas: r }: BenchResults): string[] {
  if ('skipped' in r) return ['## 3b. Two replicas on Redis', '', `Skipped: ${r.skipped}.`, '']
  return [
    '## 3b. Two replicas on Redis',
    '',
    'One sandbox; one gateway in memory; replicas A and B on one Redis (REDIS_URL). L1: the same cached page, 50 connections.',
    '',
    ...figuresTable(r.l1),
    '',
    `L2: ${r.l2.pages} pages loaded through A, then each asked of B twice in a row on one connection: the first answer ` +
      `comes from Redis (p50 ${ms(r.l2.p50FromRedis)} ms), the second from B's memory (p50 ${ms(r.l2.p50FromMemory)} ms); ` +
      `answers that were not a HIT: ${r.l2.notHits}.`,
    '',
    `Coalescing: ${r.coalescing.requests} concurrent identical cold requests, alternately to A and B: ${r.coalescing.ok} answered 200, ` +
      `${r.coalescing.upstreamCalls} upstream call(s).`,
    ''
  ]
}

function format(r: BenchResults): string {
  const hit = r.cacheHit.figures
  const gw = variant(hit, 'gateway')
  const bare = variant(hit, 'bare Fastify')
  const quiet = variant(hit, 'gateway, LOG_LEVEL=warn')
  const cold = { gateway: variant(r.coldMiss.figures, 'gateway'), direct: variant(r.coldMiss.figures, 'sandbox direct') }
  const x = r.export
  const lines = [
    `# Benchmark results${r.quick ? ' (quick)' : ''}`,
    '',
    `${r.date}, Node ${r.node}, ${r.cpus} CPUs (${r.cpuModel}). Loopback; autocannon in its own process; ` +
      'variants alternate and each figure is the median over rounds.',
    '',
    '## Summary',
    '',
    '| scenario | measure | value | target |',
    '|---|---|---:|---|',
    `| cache hit | throughput, gateway / bare Fastify | ${ratio(gw.requestsPerSecond, bare.requestsPerSecond)} | >= 0.95 |`,
    `| cache hit | p50, gateway / bare Fastify | ${ratio(gw.p50, bare.p50)} | |`,
    `| cache hit | p99, gateway / bare Fastify | ${ratio(gw.p99, bare.p99)} | <= 1.2 |`,
    `| cache hit | throughput, gateway at LOG_LEVEL=warn / bare Fastify | ${ratio(quiet.requestsPerSecond, bare.requestsPerSecond)} | |`,
    `| cache hit | p99, gateway at LOG_LEVEL=warn / bare Fastify | ${ratio(quiet.p99, bare.p99)} | |`,
    `| cache hit | throughput, gateway / node:http | ${ratio(gw.requestsPerSecond, variant(hit, 'node:http').requestsPerSecond)} | |`,
    `| cold miss | added latency at p50 | ${ms(cold.gateway.p50 - cold.direct.p50)} ms | <= 1 ms |`,
    `| cold miss | added latency at p99 | ${ms(cold.gateway.p99 - cold.direct.p99)} ms | |`,
    `| coalescing | upstream calls for ${r.coalescing.requests} concurrent identical cold requests | ${r.coalescing.upstreamCalls} | 1 |`,
    `| coalescing | token exchanges | ${r.coalescing.tokenExchanges} | 1 |`,
    ...replicaSummary(r),
    `| memory | heap + buffers growth / cache budget | ${ratio(r.memory.heapAndBuffersGrowthBytes, r.memory.budgetBytes)} | |`,
    `| memory | RSS growth / cache budget | ${ratio(r.memory.rssGrowthBytes, r.memory.budgetBytes)} | |`,
    `| export | ${x.cold.records} followers, cold: records/s | ${Math.round(x.cold.recordsPerSecond)} | |`,
    `| export | warm (every page cached): records/s | ${Math.round(x.warm.recordsPerSecond)} | |`,
    `| export | gateway peak RSS, cold / warm / cold with a ${mib(x.smallCacheBytes)} MiB cache | ${mib(x.cold.peakRssBytes)} / ${mib(x.warm.peakRssBytes)} / ${mib(x.smallCache.peakRssBytes)} MiB | < 150 MB, flat |`,
    '',
    `## 1. Cache hit: a cached ${r.cacheHit.pageBytes}-byte page (100 followers), 50 connections`,
    '',
    ...figuresTable(hit),
    '',
    `Upstream calls during the scenario: ${r.cacheHit.upstreamCalls} (the warm-up).`,
    '',
    '## 2. Cold miss: a distinct page per request, 1 connection',
    '',
    ...figuresTable(r.coldMiss.figures),
    '',
    '## 3. Coalescing',
    '',
    `${r.coalescing.requests} concurrent identical cold requests over real sockets: ${r.coalescing.ok} answered 200, ` +
      `${r.coalescing.upstreamCalls} upstream call(s), ${r.coalescing.tokenExchanges} token exchange(s).`,
    '',
    ...replicaSection(r),
    '## 4. Memory',
    '',
    `Cache budget ${mib(r.memory.budgetBytes)} MiB; ${r.memory.pagesRequested} distinct pages requested (sized from a ${r.memory.pageBytes}-byte probe page, ` +
      `1.5x the budget). RSS grew ${mib(r.memory.rssGrowthBytes)} MiB, heap + buffers ${mib(r.memory.heapAndBuffersGrowthBytes)} MiB` +
      `${r.memory.afterGc ? ' (measured after a full GC)' : ' (no --expose-gc: not measured after GC)'}.`,
    '',
    `## 5. Export: all ${x.cold.records} followers of \`${x.username}\` as NDJSON`,
    '',
    `The gateway in its own process (${r.quick ? '`src/server.ts` through tsx' : '`node dist/server.js`'}), the sandbox and the reader in the bench ` +
      `process; peak RSS is the gateway's VmHWM, reset before each export. Idle RSS before the first export: ${mib(x.idleRssBytes)} MiB.`,
    '',
    '| run | cache | records | complete | seconds | records/s | upstream calls | peak RSS MiB | RSS after MiB |',
    '|---|---:|---:|---|---:|---:|---:|---:|---:|',
    ...(
      [
        ['cold', x.cacheBytes, x.cold],
        ['warm', x.cacheBytes, x.warm],
        ['cold, small cache', x.smallCacheBytes, x.smallCache]
      ] as const
    ).map(
      ([name, cache, run]) =>
        `| ${name} | ${mib(cache)} MiB | ${run.records} | ${run.complete} | ${run.seconds.toFixed(1)} | ${Math.round(run.recordsPerSecond)} | ${run.upstreamCalls} | ${mib(run.peakRssBytes)} | ${mib(run.rssAfterBytes)} |`
    ),
    ''
  ]
  return lines.join('\n')
}

process.stdout.write(format(await runBench({ quick: process.argv.includes('--quick') })))
