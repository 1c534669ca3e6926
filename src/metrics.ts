import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { QuotaReport } from './schemas/quota.js'
import type { BreakerState } from './upstream/circuit-breaker.js'
import type { UpstreamCall } from './upstream/http-client.js'

export interface MetricsSources {
  /** Read when Prometheus scrapes, so the quota gauges are as current as the store. */
  quota: () => Promise<QuotaReport>
  breakerState: () => BreakerState
}

const BREAKER_STATES: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 }
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/** The gateway's Prometheus metrics, in a registry of its own (one per app, so tests can build many). */
export class Metrics {
  readonly registry = new Registry()

  readonly requestDuration = new Histogram({
    name: 'gateway_http_request_duration_seconds',
    help: 'Consumer requests by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry]
  })

  readonly cacheRequests = new Counter({
    name: 'gateway_cache_requests_total',
    help: 'Page requests by cache outcome: hit, miss, coalesced (waited for another request\'s upstream call), stale',
    labelNames: ['outcome'],
    registers: [this.registry]
  })

  readonly #upstreamCalls = new Counter({
    name: 'gateway_upstream_calls_total',
    help: 'Calls to the TikTok API by endpoint (token, followers) and outcome (HTTP status or failure code)',
    labelNames: ['endpoint', 'outcome'],
    registers: [this.registry]
  })

  readonly #upstreamDuration = new Histogram({
    name: 'gateway_upstream_call_duration_seconds',
    help: 'Duration of calls to the TikTok API by endpoint',
    labelNames: ['endpoint'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry]
  })

  readonly #tokenExchanges = new Counter({
    name: 'gateway_token_exchanges_total',
    help: 'Client access token exchanges with TikTok',
    registers: [this.registry]
  })

  constructor(sources: MetricsSources) {
    collectDefaultMetrics({ register: this.registry })
    const quotaGauge = (name: string, help: string, field: 'used' | 'remaining') =>
      new Gauge({
        name,
        help,
        labelNames: ['scope', 'consumer'],
        registers: [this.registry],
        async collect() {
          const report = await sources.quota()
          this.set({ scope: 'team', consumer: '' }, report.team[field])
          for (const [consumer, usage] of Object.entries(report.consumers)) this.set({ scope: 'consumer', consumer }, usage[field])
        }
      })
    quotaGauge('gateway_quota_used', "Upstream research calls today (UTC), for the team and per consumer", 'used')
    quotaGauge('gateway_quota_remaining', "Upstream research calls left today (UTC), for the team and per consumer", 'remaining')
    new Gauge({
      name: 'gateway_upstream_circuit_state',
      help: 'Circuit breaker in front of TikTok: 0 closed, 1 half-open, 2 open',
      registers: [this.registry],
      collect() {
        this.set(BREAKER_STATES[sources.breakerState()])
      }
    })
  }

  upstreamCall({ endpoint, outcome, seconds }: UpstreamCall): void {
    this.#upstreamCalls.inc({ endpoint, outcome })
    this.#upstreamDuration.observe({ endpoint }, seconds)
    if (endpoint === 'token' && outcome === '200') this.#tokenExchanges.inc()
  }
}
