import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type HistogramConfiguration } from 'prom-client'
import { EXPORT_STATES, type ExportState } from './schemas/export-jobs.js'
import type { QuotaReport } from './schemas/quota.js'
import type { CacheOutcome } from './stores/page-store.js'
import type { RedisConnection } from './stores/redis.js'
import type { BreakerState } from './upstream/circuit-breaker.js'
import type { UpstreamCall } from './upstream/http-client.js'

export interface MetricsSources {
  /** Read when Prometheus scrapes, so the quota gauges are as current as the store. */
  quota: () => Promise<QuotaReport>
  breakerState: () => BreakerState
  /** The Redis connections of shared state; none in memory. */
  redis: () => readonly RedisConnection[]
  exportJobs: () => Promise<Record<ExportState, number>>
}

const BREAKER_STATES: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 }
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/** One series of request durations: counts per bucket (not yet cumulative; the last one past every bound), sum and count. */
interface DurationSeries {
  labels: { method: string; route: string; status: number }
  counts: number[]
  sum: number
  count: number
}

/**
 * The request histogram, counted per series in plain arrays when a request is answered and handed
 * to prom-client when scraped: prom-client's observe() builds and hashes a label string and turns
 * the bucket's bound into a property name on every call, which cost a cache hit more than the
 * rest of its metrics together (see docs/architecture.md, "The cost of a cache hit").
 */
class RequestDurations extends Histogram<'method' | 'route' | 'status'> {
  readonly #series = new Map<string, DurationSeries[]>()
  readonly #name: string
  readonly #help: string

  constructor(configuration: HistogramConfiguration<'method' | 'route' | 'status'> & { name: string; help: string }) {
    super(configuration)
    this.#name = configuration.name
    this.#help = configuration.help
  }

  record(method: string, route: string, status: number, seconds: number): void {
    // By route first: the route's string is the same object on every request, so no key is built or hashed per call.
    let ofRoute = this.#series.get(route)
    if (ofRoute === undefined) this.#series.set(route, (ofRoute = []))
    let series: DurationSeries | undefined
    for (const candidate of ofRoute) if (candidate.labels.status === status && candidate.labels.method === method) series = candidate
    if (series === undefined) {
      series = { labels: { method, route, status }, counts: Array<number>(LATENCY_BUCKETS.length + 1).fill(0), sum: 0, count: 0 }
      ofRoute.push(series)
    }
    let bucket = 0
    while (bucket < LATENCY_BUCKETS.length && seconds > (LATENCY_BUCKETS[bucket] ?? Infinity)) bucket++
    series.counts[bucket] = (series.counts[bucket] ?? 0) + 1
    series.sum += seconds
    series.count++
  }

  /** What prom-client renders (and get() splays): the same values its own histogram gives. */
  async getForPromString() {
    const name = this.#name
    const values = [...this.#series.values()].flat().flatMap(({ labels, counts, sum, count }) => {
      let cumulative = 0
      return [
        ...LATENCY_BUCKETS.map((le, i) => ({ labels: { le }, sharedLabels: labels, value: (cumulative += counts[i] ?? 0), metricName: `${name}_bucket` })),
        { labels: { le: '+Inf' }, sharedLabels: labels, value: count, metricName: `${name}_bucket` },
        { labels: {}, sharedLabels: labels, value: sum, metricName: `${name}_sum` },
        { labels: {}, sharedLabels: labels, value: count, metricName: `${name}_count` }
      ]
    })
    return { name, help: this.#help, type: 'histogram', values, aggregator: 'sum' }
  }
}

/** Who is scraping: anyone sees the team's figures; an authorised scraper also each consumer's. */
export type MetricsView = 'team' | 'consumers'

/**
 * The gateway's Prometheus metrics, in registries of their own (one set per app, so tests can build
 * many). Consumer names and their daily usage are not for every scraper: one registry per view,
 * the same metric objects in both, and only the quota gauges differ.
 */
export class Metrics {
  readonly #registries: Record<MetricsView, Registry> = { team: new Registry(), consumers: new Registry() }
  readonly #everyView = Object.values(this.#registries)

  readonly #requestDuration = new RequestDurations({
    name: 'gateway_http_request_duration_seconds',
    help: 'Consumer requests by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: LATENCY_BUCKETS,
    registers: this.#everyView
  })

  readonly #cacheOutcomes: Record<CacheOutcome, number> = { hit: 0, miss: 0, coalesced: 0, stale: 0 }

  readonly exportRecords = new Counter({
    name: 'gateway_export_records_total',
    help: 'Accounts export jobs recorded (each account once per job)',
    registers: this.#everyView
  })

  readonly exportJobProblems = new Counter({
    name: 'gateway_export_job_problems_total',
    help: 'Export jobs stopped short, by problem code (a TikTok failure, a spent budget, Redis full or away), or lost from the store (lost)',
    labelNames: ['problem'],
    registers: this.#everyView
  })

  readonly #upstreamCalls = new Counter({
    name: 'gateway_upstream_calls_total',
    help: 'Calls to the TikTok API by endpoint (token, followers) and outcome (HTTP status or failure code)',
    labelNames: ['endpoint', 'outcome'],
    registers: this.#everyView
  })

  readonly #upstreamDuration = new Histogram({
    name: 'gateway_upstream_call_duration_seconds',
    help: 'Duration of calls to the TikTok API by endpoint',
    labelNames: ['endpoint'],
    buckets: LATENCY_BUCKETS,
    registers: this.#everyView
  })

  readonly #tokenExchanges = new Counter({
    name: 'gateway_token_exchanges_total',
    help: 'Client access token exchanges with TikTok',
    registers: this.#everyView
  })

  readonly redisCacheWriteErrors = new Counter({
    name: 'gateway_redis_cache_write_errors_total',
    help: 'Pages that could not be written to Redis (best effort: still served from process memory)',
    registers: this.#everyView
  })

  constructor(sources: MetricsSources) {
    for (const registry of this.#everyView) collectDefaultMetrics({ register: registry })
    const outcomes = this.#cacheOutcomes
    new Counter({
      name: 'gateway_cache_requests_total',
      help: 'Page requests by cache outcome: hit, miss, coalesced (waited for another request\'s upstream call), stale',
      labelNames: ['outcome'],
      registers: this.#everyView,
      collect() {
        this.reset()
        for (const [outcome, count] of Object.entries(outcomes)) if (count > 0) this.inc({ outcome }, count)
      }
    })
    const quotaGauge = (view: MetricsView, name: string, help: string, field: 'used' | 'remaining') =>
      new Gauge({
        name,
        help,
        labelNames: ['scope', 'consumer'],
        registers: [this.#registries[view]],
        async collect() {
          const report = await sources.quota()
          this.set({ scope: 'team', consumer: '' }, report.team[field])
          this.set({ scope: 'exports', consumer: '' }, report.exports[field])
          if (view === 'team') return
          for (const [consumer, usage] of Object.entries(report.consumers)) this.set({ scope: 'consumer', consumer }, usage[field])
        }
      })
    for (const view of ['team', 'consumers'] as const) {
      quotaGauge(view, 'gateway_quota_used', 'Upstream research calls today (UTC), for the team, its export jobs and (to an authorised scraper) per consumer', 'used')
      quotaGauge(view, 'gateway_quota_remaining', 'Upstream research calls left today (UTC), for the team, its export jobs and (to an authorised scraper) per consumer', 'remaining')
    }
    new Gauge({
      name: 'gateway_export_jobs',
      help: 'Export jobs by state (with Redis, every replica reports the same shared count)',
      labelNames: ['state'],
      registers: this.#everyView,
      async collect() {
        // While Redis is down the shared counts are unknown: no series, rather than a failed scrape.
        this.reset()
        const counts = await sources.exportJobs().catch(() => undefined)
        if (counts === undefined) return
        for (const state of EXPORT_STATES) this.set({ state }, counts[state])
      }
    })
    new Gauge({
      name: 'gateway_upstream_circuit_state',
      help: 'Circuit breaker in front of TikTok: 0 closed, 1 half-open, 2 open',
      registers: this.#everyView,
      collect() {
        this.set(BREAKER_STATES[sources.breakerState()])
      }
    })
    new Gauge({
      name: 'gateway_redis_up',
      help: 'Whether Redis answers, per connection role (state: quota and rate limits; cache: pages); absent without REDIS_URL',
      labelNames: ['role'],
      registers: this.#everyView,
      collect() {
        for (const connection of sources.redis()) this.set({ role: connection.role }, connection.up ? 1 : 0)
      }
    })
  }

  get contentType(): string {
    return this.#registries.team.contentType
  }

  /** The Prometheus text of one view. */
  render(view: MetricsView): Promise<string> {
    return this.#registries[view].metrics()
  }

  /** A consumer request answered, by whichever entry point answered it. */
  requestServed(method: string, route: string, status: number, seconds: number): void {
    this.#requestDuration.record(method, route, status, seconds)
  }

  /** A page request's cache outcome. */
  cacheRequest(outcome: CacheOutcome): void {
    this.#cacheOutcomes[outcome]++
  }

  upstreamCall({ endpoint, outcome, seconds }: UpstreamCall): void {
    this.#upstreamCalls.inc({ endpoint, outcome })
    this.#upstreamDuration.observe({ endpoint }, seconds)
    if (endpoint === 'token' && outcome === '200') this.#tokenExchanges.inc()
  }
}
