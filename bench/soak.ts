/**
 * `npm run soak [-- --seconds N]`: minutes of mixed load (a pool of users, so hits, misses,
 * expiries and stale pages mix) against a sandbox that injects faults; prints failed
 * responses, latency and RSS growth.
 */
import { load } from './bench.js'
import { AUTH, startStack } from './stack.js'

const secondsArg = process.argv.indexOf('--seconds')
const seconds = secondsArg === -1 ? 180 : Number(process.argv[secondsArg + 1])
const faults = { latencyMs: 5, errorRate: 0.05, edgeTimeoutRate: 0.02, resetRate: 0.02, rateLimitRate: 0.02, rateLimitRetryAfterSeconds: 0 }

const stack = await startStack({ CACHE_TTL_LATEST_SECONDS: '5', UPSTREAM_TIMEOUT_MS: '2000' }, faults)
const rss: number[] = []
const sampler = setInterval(() => void stack.gateway.memory().then(({ rss: sample }) => rss.push(sample)), 1000)
const result = await load({ url: stack.url, connections: 20, durationSeconds: seconds, headers: AUTH, distinct: { kind: 'gateway', prefix: 'soak', pool: 2000 } })
clearInterval(sampler)
const metrics = await (await fetch(`${stack.url}/metrics`)).text()
const counter = (name: string) =>
  [...metrics.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\d+)`, 'gm'))].map(([, labels, value]) => `${labels} ${value}`).join(', ')
await stack.close()

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1)
const settled = rss[Math.min(10, rss.length - 1)] ?? 0
console.log(`# Soak: ${seconds} s, 20 connections, 2000 users, faults ${JSON.stringify(faults)}`)
console.log(`${new Date().toISOString()}, Node ${process.version}`)
console.log(`responses ${result.responses}, ${Math.round(result.requestsPerSecond)} req/s`)
console.log(`failed responses (non-2xx or errors): ${result.non2xx + result.errors} (${((100 * (result.non2xx + result.errors)) / result.responses).toFixed(2)}%)`)
console.log(`latency p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms`)
console.log(`RSS after 10 s ${mib(settled)} MiB, at the end ${mib(rss.at(-1)!)} MiB, growth ${mib(rss.at(-1)! - settled)} MiB, peak ${mib(Math.max(...rss))} MiB`)
console.log(`cache: ${counter('gateway_cache_requests_total')}`)
console.log(`upstream: ${counter('gateway_upstream_calls_total')}`)
