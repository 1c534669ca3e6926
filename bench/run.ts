/**
 * `npm run bench [-- --quick] [-- --hit | --memory | --export | --replicas] [-- --rounds N] [-- --seconds S] [-- --against DIR]`: runs every scenario
 * (or with --hit only the cache hit, the one to iterate on; --against adds the gateway of another
 * checkout, e.g. a `git worktree` of the commit before, to the same alternating run; --export only
 * the exports of lists of 200,000, 1,000,000 and 2,000,000 followers; --replicas only the two replicas
 * on Redis) and prints the results as Markdown.
 */
import { loadConfig } from '../src/config.js'
import { cacheHit, median, memory, replicas, runBench, type BenchResults, type VariantFigures } from './bench.js'
import { deployedRuntime, exportBench } from './export.js'

const ratio = (a: number, b: number): string => (a / b).toFixed(2)
const ms = (value: number): string => value.toFixed(3)
const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1)

const busy = (f: VariantFigures): string => (f.serverBusy === undefined ? '' : `${Math.round(f.serverBusy * 100)}%`)

function figuresTable(figures: Record<string, VariantFigures>): string[] {
  return [
    '| variant | req/s | p50 ms | p99 ms | server CPU µs/req | server busy | failed responses |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...Object.entries(figures).map(
      ([name, f]) =>
        `| ${name} | ${Math.round(f.requestsPerSecond)} | ${ms(f.p50)} | ${ms(f.p99)} | ${f.cpuPerRequestUs === undefined ? '' : f.cpuPerRequestUs.toFixed(1)} | ${busy(f)} | ${f.failures} |`
    )
  ]
}

/** `a`'s throughput over `b`'s, round by round: the median and the range. */
function roundRatios(a: VariantFigures, b: VariantFigures): string {
  const ratios = a.roundsPerSecond.map((value, round) => value / (b.roundsPerSecond[round] ?? NaN))
  return `${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`
}

/** A variant's figures; every variant the report names was measured. */
function variant(figures: Record<string, VariantFigures>, name: string): VariantFigures {
  const found = figures[name]
  if (found === undefined) throw new Error(`no figures for ${name}`)
  return found
}

function replicaSummary(r: BenchResults['replicas']): string[] {
  if ('skipped' in r) return [`| replicas on Redis | skipped: ${r.skipped} | | |`]
  const memory = variant(r.l1, 'one replica, in memory')
  const redis = variant(r.l1, 'replica A on Redis')
  return [
    `| replicas on Redis | L1 hit throughput, replica on Redis / one replica in memory | ${ratio(redis.requestsPerSecond, memory.requestsPerSecond)} | >= 0.95 |`,
    `| replicas on Redis | L2 hit (in Redis, not in memory): added latency at p50 | ${ms(r.l2.p50FromRedis - r.l2.p50FromMemory)} ms | <= 0.5 ms |`,
    `| replicas on Redis | upstream calls for ${r.coalescing.requests} identical cold requests over two replicas | ${r.coalescing.upstreamCalls} | 1 |`
  ]
}

function replicaSection(r: BenchResults['replicas']): string[] {
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

type ExportResults = BenchResults['export']

/** One row per export run; the idle column is the gateway's RSS before its first export. */
function exportTable(exports: ExportResults[]): string[] {
  return [
    '| list | run | cache | idle RSS MiB | records | complete | seconds | records/s | upstream calls | peak RSS MiB | RSS after MiB |',
    '|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|',
    ...exports.flatMap((x) =>
      (
        [
          ['cold', x.cacheBytes, x.cold, x.idleRssBytes],
          ['warm', x.cacheBytes, x.warm, undefined],
          ['cold, small cache', x.smallCacheBytes, x.smallCache, x.smallIdleRssBytes]
        ] as const
      ).map(
        ([name, cache, run, idle]) =>
          `| ${x.username} | ${name} | ${mib(cache)} MiB | ${idle === undefined ? '' : mib(idle)} | ${run.records} | ${run.complete} | ${run.seconds.toFixed(1)} | ${Math.round(run.recordsPerSecond)} | ${run.upstreamCalls} | ${mib(run.peakRssBytes)} | ${mib(run.rssAfterBytes)} |`
      )
    )
  ]
}

function format(r: BenchResults): string {
  const hit = r.cacheHit.figures
  const gw = variant(hit, 'gateway hit')
  const bare = variant(hit, 'bare Fastify')
  const logged = variant(hit, 'bare Fastify + access line')
  const withHeaders = variant(hit, "bare Fastify + a hit's headers")
  const cold = { gateway: variant(r.coldMiss.figures, 'gateway'), direct: variant(r.coldMiss.figures, 'sandbox direct') }
  const x = r.export
  const lines = [
    `# Benchmark results${r.quick ? ' (quick)' : ''}`,
    '',
    `${r.date}, Node ${r.node}, ${r.cpus} CPUs (${r.cpuModel}). Loopback; every server and the load generator in processes of ` +
      'their own; variants alternate and each figure is the median over rounds.',
    '',
    '## Summary',
    '',
    '| scenario | measure | value | target |',
    '|---|---|---:|---|',
    `| cache hit | throughput, gateway / bare Fastify | ${ratio(gw.requestsPerSecond, bare.requestsPerSecond)} | >= 0.9 |`,
    `| cache hit | the same, round by round: median (range) | ${roundRatios(gw, bare)} | |`,
    `| cache hit | p99, gateway / bare Fastify | ${ratio(gw.p99, bare.p99)} | <= 1.3 |`,
    `| cache hit | throughput, gateway / bare Fastify + the same access line | ${ratio(gw.requestsPerSecond, logged.requestsPerSecond)} | |`,
    `| cache hit | p99, gateway / bare Fastify + the same access line | ${ratio(gw.p99, logged.p99)} | |`,
    `| cache hit | throughput, gateway / bare Fastify sending a hit's headers | ${ratio(gw.requestsPerSecond, withHeaders.requestsPerSecond)} | |`,
    `| cache hit | server CPU per request, gateway / bare Fastify | ${ratio(gw.cpuPerRequestUs ?? NaN, bare.cpuPerRequestUs ?? NaN)} | |`,
    `| cold miss | added latency at p50 | ${ms(cold.gateway.p50 - cold.direct.p50)} ms | <= 1 ms |`,
    `| cold miss | added latency at p99 | ${ms(cold.gateway.p99 - cold.direct.p99)} ms | |`,
    `| coalescing | upstream calls for ${r.coalescing.requests} concurrent identical cold requests | ${r.coalescing.upstreamCalls} | 1 |`,
    `| coalescing | token exchanges | ${r.coalescing.tokenExchanges} | 1 |`,
    ...replicaSummary(r.replicas),
    ...r.memory.map(
      (m) => `| memory | heap + buffers growth / cache budget, max_count=${m.maxCount} | ${ratio(m.heapAndBuffersGrowthBytes, m.budgetBytes)} | <= 1.05 |`
    ),
    ...r.memory.map((m) => `| memory | RSS growth / cache budget, max_count=${m.maxCount} | ${ratio(m.rssGrowthBytes, m.budgetBytes)} | |`),
    `| export | ${x.cold.records} followers, cold: records/s | ${Math.round(x.cold.recordsPerSecond)} | |`,
    `| export | warm (every page cached): records/s | ${Math.round(x.warm.recordsPerSecond)} | |`,
    `| export | gateway peak RSS, cold / warm with a ${mib(x.cacheBytes)} MiB cache (the whole list) | ${mib(x.cold.peakRssBytes)} / ${mib(x.warm.peakRssBytes)} MiB | |`,
    `| export | gateway peak RSS, cold with the default ${mib(x.smallCacheBytes)} MiB cache | ${mib(x.smallCache.peakRssBytes)} MiB | < 150 MB (143 MiB), flat |`,
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
    ...replicaSection(r.replicas),
    '## 4. Memory (the gateway process, after a full GC)',
    '',
    '| max_count | page bytes | budget MiB | pages requested (1.5x budget) | heap + buffers growth MiB | RSS growth MiB |',
    '|---:|---:|---:|---:|---:|---:|',
    ...r.memory.map(
      (m) =>
        `| ${m.maxCount} | ${m.pageBytes} | ${mib(m.budgetBytes)} | ${m.pagesRequested} | ${mib(m.heapAndBuffersGrowthBytes)} | ${mib(m.rssGrowthBytes)} |`
    ),
    '',
    `## 5. Export: all ${x.cold.records} followers of \`${x.username}\` as NDJSON`,
    '',
    `The gateway in its own process (${r.quick ? '`src/server.ts` through tsx' : '`node dist/server.js`'}), the sandbox and the reader in the bench ` +
      "process; peak RSS is the gateway's VmHWM, reset before each export.",
    '',
    ...exportTable([x]),
    ''
  ]
  return lines.join('\n')
}

const arg = (name: string): string | undefined => {
  const at = process.argv.indexOf(name)
  return at === -1 ? undefined : process.argv[at + 1]
}
const options = {
  quick: process.argv.includes('--quick'),
  rounds: arg('--rounds') === undefined ? undefined : Number(arg('--rounds')),
  seconds: arg('--seconds') === undefined ? undefined : Number(arg('--seconds')),
  against: arg('--against')
}
if (process.argv.includes('--memory')) {
  for (const m of [await memory(options, 10), await memory(options, 100)]) {
    process.stdout.write(
      `max_count=${m.maxCount}: ${m.pagesRequested} pages of ${m.pageBytes} bytes into a ${mib(m.budgetBytes)} MiB budget: heap + buffers ` +
        `${ratio(m.heapAndBuffersGrowthBytes, m.budgetBytes)}x the budget, RSS ${ratio(m.rssGrowthBytes, m.budgetBytes)}x\n`
    )
  }
} else if (process.argv.includes('--export')) {
  // The default cache is the headline (peak RSS flat and under 150 MB however long the list); the
  // 4 MiB cache shows what grows with the list beyond the cache.
  const cacheBytes = loadConfig({}).cache.maxBytes
  const exports: ExportResults[] = []
  for (const followers of options.quick ? [2000] : [200_000, 1_000_000, 2_000_000]) {
    exports.push(await exportBench({ username: `many${followers}`, cacheBytes, smallCacheBytes: 4 * 1024 * 1024, compiled: !options.quick }))
  }
  process.stdout.write(
    [
      `Export, ${new Date().toISOString()}, Node ${process.version}, the gateway as ` +
        (options.quick ? '`tsx src/server.ts`' : `\`node ${[...(await deployedRuntime()).flags, 'dist/server.js'].join(' ')}\``),
      '',
      ...exportTable(exports),
      ''
    ].join('\n')
  )
} else if (process.argv.includes('--replicas')) {
  const r = await replicas(options)
  process.stdout.write([...replicaSection(r), '| scenario | measure | value | target |', '|---|---|---:|---|', ...replicaSummary(r), ''].join('\n'))
} else if (process.argv.includes('--hit')) {
  const { pageBytes, figures } = await cacheHit(options)
  const gw = variant(figures, 'gateway hit')
  const bare = variant(figures, 'bare Fastify')
  process.stdout.write(
    [
      `Cache hit, ${pageBytes}-byte page, ${new Date().toISOString()}: throughput ${ratio(gw.requestsPerSecond, bare.requestsPerSecond)}x bare Fastify, ` +
        `p99 ${ratio(gw.p99, bare.p99)}x, server CPU ${ratio(gw.cpuPerRequestUs ?? NaN, bare.cpuPerRequestUs ?? NaN)}x; ` +
        `round by round ${roundRatios(gw, bare)}x bare Fastify, ${roundRatios(gw, variant(figures, "bare Fastify + a hit's headers"))}x bare Fastify sending a hit's headers`,
      '',
      ...figuresTable(figures),
      ''
    ].join('\n')
  )
} else {
  process.stdout.write(format(await runBench(options)))
}
