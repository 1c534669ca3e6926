import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { failure, traitsOf } from '../errors.js'
import { REQUEST_ID_HEADER } from '../schemas/headers.js'
import { HealthStatus } from '../schemas/operations.js'
import { problemResponses } from '../schemas/problem.js'
import { ref } from '../schemas/named.js'
import { NoQuery } from '../schemas/query.js'

/** A 200 of HealthStatus saying `status`. */
const healthy = (description: string, status: string) => ({
  description,
  headers: REQUEST_ID_HEADER,
  content: { 'application/json': { schema: ref(HealthStatus), example: { status } } }
})

/** Probes and scrapes must see the gateway as it is when busy, not a 503 from load shedding. */
const NEVER_SHED = { loadShedding: false } as const

/** Liveness, readiness and metrics for load balancers, orchestrators and Prometheus; no consumer key needed (see /metrics). */
const operationsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/healthz',
    {
      config: NEVER_SHED,
      schema: {
        operationId: 'getHealth',
        tags: ['operations'],
        summary: 'Liveness: the process is up',
        security: [],
        querystring: NoQuery,
        response: { 200: healthy('The process is up', 'ok'), ...problemResponses(['GW_INVALID_REQUEST'], { instance: '/healthz' }) }
      }
    },
    async () => ({ status: 'ok' })
  )

  app.get(
    '/readyz',
    {
      config: NEVER_SHED,
      schema: {
        operationId: 'getReadiness',
        tags: ['operations'],
        summary: 'Readiness: able to serve consumers',
        description:
          "Not ready (503) while TikTok rejects the gateway's client credentials; the exchange is tried again in the background " +
          'every 30 s, so readiness recovers without consumer traffic. Still ready while the daily quota ' +
          'is spent or TikTok is failing: cached pages can still be served. Checks no upstream on its own: ' +
          'readiness reflects the outcome of the last token exchange. While Redis (REDIS_URL) is unavailable: 200 with ' +
          '`status: degraded` and `redis: unavailable`, since every replica shares it and each can still serve.',
        security: [],
        querystring: NoQuery,
        response: { 200: healthy('Ready', 'ready'), ...problemResponses(['GW_INVALID_REQUEST', 'GW_CREDENTIALS_REJECTED'], { instance: '/readyz' }) }
      }
    },
    async () => {
      if (traitsOf(app.researchApi.tokenFailure).unready) {
        throw failure('GW_CREDENTIALS_REJECTED', 'The last token exchange was refused; an operator must check TIKTOK_CLIENT_KEY and TIKTOK_CLIENT_SECRET')
      }
      // Still 200: every replica shares the one Redis, so a 503 would take them all out of the load
      // balancer at once, while each can serve its memory and call TikTok within its outage share.
      if (app.stores.redis.some((connection) => !connection.up)) return { status: 'degraded', redis: 'unavailable' }
      return { status: 'ready' }
    }
  )

  app.get(
    '/metrics',
    {
      config: NEVER_SHED,
      schema: {
        operationId: 'getMetrics',
        tags: ['operations'],
        summary: 'Prometheus metrics',
        description:
          'Request durations by route and status; cache hits, misses, coalesced and stale; upstream calls by endpoint and ' +
          'outcome with latency; token exchanges; quota used and remaining for the team; circuit state; with REDIS_URL, whether Redis is up. Per-consumer quota ' +
          'series only with `Authorization: Bearer <METRICS_TOKEN>` or an admin consumer key. When the gateway sets ' +
          'METRICS_TOKEN, one of those is required.',
        // `{}`: no credentials at all, unless the gateway sets METRICS_TOKEN.
        security: [{}, { metricsToken: [] }, { bearerAuth: [] }, { apiKey: [] }],
        querystring: NoQuery,
        response: {
          200: {
            description: 'The Prometheus text exposition format',
            headers: REQUEST_ID_HEADER,
            content: { 'text/plain': { schema: Type.String({ examples: ['gateway_upstream_circuit_state 0\n'] }) } }
          },
          ...problemResponses(['GW_INVALID_REQUEST', 'GW_UNAUTHORIZED'], { instance: '/metrics' })
        }
      }
    },
    async (request, reply) => {
      const view = await app.authorizeMetrics(request)
      return reply.type(app.metrics.contentType).send(await app.metrics.render(view))
    }
  )
}

export default operationsRoutes
