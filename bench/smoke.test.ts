import t from 'tap'
import { runBench } from './bench.js'

// Timings are never asserted here (bench/RESULTS.md holds them); only what must hold on any machine.
t.setTimeout(300_000)
t.test('the quick benchmark runs every scenario; 1000 concurrent identical cold requests make 1 upstream call and 1 token exchange', async (t) => {
  const results = await runBench({ quick: true })
  t.same(results.coalescing, { requests: 1000, ok: 1000, upstreamCalls: 1, tokenExchanges: 1 })
  t.equal(results.cacheHit.upstreamCalls, 1, 'cache hits never reach the upstream after the warm-up')
  for (const [scenario, figures] of Object.entries({ ...results.cacheHit.figures, ...results.coldMiss.figures })) {
    t.equal(figures.failures, 0, `${scenario}: every response was a 2xx`)
    t.ok(figures.requestsPerSecond > 0, `${scenario}: measured`)
  }
  for (const figures of Object.values(results.cacheHit.figures)) t.ok((figures.cpuPerRequestUs ?? 0) > 0, 'server CPU measured')
  for (const memory of results.memory) t.ok(memory.pagesRequested > 0, `memory at max_count=${memory.maxCount}`)
  if ('skipped' in results.replicas) {
    t.comment(`two replicas on Redis: ${results.replicas.skipped}`)
  } else {
    t.equal(results.replicas.coalescing.upstreamCalls, 1, '1000 identical cold requests over two replicas on Redis: 1 upstream call')
    t.equal(results.replicas.l2.notHits, 0, 'a page loaded through A is a HIT on B')
    for (const [variant, figures] of Object.entries(results.replicas.l1)) t.equal(figures.failures, 0, `${variant}: every response was a 2xx`)
  }
  const { cold, warm, smallCache } = results.export
  for (const run of [cold, warm, smallCache]) t.match(run, { records: 2000, complete: true }, 'the export streams the whole list')
  t.equal(cold.upstreamCalls, 20, 'one upstream call per page of 100')
  t.equal(warm.upstreamCalls, 0, 'a second export is served from the cache')
})
