/**
 * The load generator, run in its own process so it does not compete with the servers for the
 * event loop. Takes a LoadSpec as JSON in argv[2], prints a LoadResult as JSON.
 */
import autocannon, { type Request } from 'autocannon'

export interface LoadSpec {
  url: string
  connections: number
  durationSeconds: number
  headers?: Record<string, string>
  /**
   * Each request asks for a page never asked before (GET a gateway path, or POST the sandbox), or,
   * with `pool`, for one of that many users in turn.
   */
  distinct?: { kind: 'gateway' | 'upstream'; prefix: string; pool?: number }
}

export interface LoadResult {
  requestsPerSecond: number
  /** Exact percentiles in ms, from every response's own timing (autocannon's histogram keeps whole ms). */
  p50: number
  p99: number
  responses: number
  errors: number
  non2xx: number
}

function distinctRequests({ kind, prefix, pool = Infinity }: NonNullable<LoadSpec['distinct']>): Request[] {
  let n = 0
  const setupRequest = (request: Request): Request => {
    const username = `${prefix}${n++ % pool}`
    return kind === 'gateway'
      ? { ...request, path: `/v1/users/${username}/followers?max_count=100` }
      : { ...request, method: 'POST', path: '/v2/research/user/followers/', body: JSON.stringify({ username, max_count: 100 }) }
  }
  return [{ setupRequest }]
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN
}

const spec = JSON.parse(process.argv[2] ?? '') as LoadSpec
const times: number[] = []
const instance = autocannon(
  {
    url: spec.url,
    connections: spec.connections,
    duration: spec.durationSeconds,
    headers: spec.headers,
    requests: spec.distinct && distinctRequests(spec.distinct)
  },
  (err, result) => {
    if (err) throw err
    const sorted = Float64Array.from(times).sort()
    const out: LoadResult = {
      requestsPerSecond: result.requests.total / (result.duration || spec.durationSeconds),
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      responses: times.length,
      errors: result.errors + result.timeouts,
      non2xx: result.non2xx
    }
    process.stdout.write(JSON.stringify(out))
  }
)
instance.on('response', (_client, _status, _bytes, responseTime) => times.push(responseTime))
