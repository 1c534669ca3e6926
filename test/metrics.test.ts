import { Histogram, Registry } from 'prom-client'
import t from 'tap'
import { Metrics } from '../src/metrics.js'

const seriesOf = (text: string, name: string) => text.split('\n').filter((line) => line.startsWith(name))

t.test('the request histogram renders exactly what a prom-client histogram fed the same requests renders', async (t) => {
  const metrics = new Metrics({
    quota: async () => ({ day: '', team: { used: 0, remaining: 0, limit: 0 }, exports: { used: 0, remaining: 0, limit: 0 }, consumers: {} }) as never,
    breakerState: () => 'closed',
    redis: () => [],
    exportJobs: async () => ({ queued: 0, running: 0, paused: 0, done: 0, failed: 0, cancelled: 0 })
  })
  const registry = new Registry()
  const reference = new Histogram({
    name: 'gateway_http_request_duration_seconds',
    help: 'Consumer requests by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry]
  })
  const requests = [
    ['GET', '/v1/users/:username/followers', 200, 0.0004],
    ['GET', '/v1/users/:username/followers', 200, 0.001],
    ['GET', '/v1/users/:username/followers', 304, 0.02],
    ['GET', '/v1/users/:username/followers', 200, 31],
    ['POST', '/v1/exports', 202, 0.3]
  ] as const
  for (const [method, route, status, seconds] of requests) {
    metrics.requestServed(method, route, status, seconds)
    reference.observe({ method, route, status }, seconds)
  }
  const name = 'gateway_http_request_duration_seconds'
  const rendered = seriesOf(await metrics.render('team'), name)
  t.equal(rendered.length, 3 * 16, 'three series of 13 bounds, +Inf, sum and count')
  t.same(rendered, seriesOf(await registry.metrics(), name))
})
