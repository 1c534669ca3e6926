import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { failure } from '../errors.js'
import { problemResponses } from '../schemas/problem.js'

const Status = Type.Object({ status: Type.String() })

/** Liveness, readiness and metrics for load balancers, orchestrators and Prometheus; no consumer key needed. */
const operationsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Liveness: the process is up',
        response: { 200: { ...Status, examples: [{ status: 'ok' }] } }
      }
    },
    async () => ({ status: 'ok' })
  )

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness: able to serve consumers',
        description:
          "Not ready (503) while TikTok rejects the gateway's client credentials. Still ready while the daily quota " +
          'is spent or TikTok is failing: cached pages can still be served. Checks no upstream on its own: ' +
          'readiness reflects the outcome of the last token exchange.',
        response: { 200: { ...Status, examples: [{ status: 'ready' }] }, ...problemResponses({ 503: 'Not ready' }) }
      }
    },
    async () => {
      if (app.researchApi.credentialsRejected) {
        throw failure('GW_CREDENTIALS_REJECTED', 'The last token exchange was refused; an operator must check TIKTOK_CLIENT_KEY and TIKTOK_CLIENT_SECRET')
      }
      return { status: 'ready' }
    }
  )

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics',
        description:
          'Request durations by route and status; cache hits, misses, coalesced and stale; upstream calls by endpoint and ' +
          'outcome with latency; token exchanges; quota used and remaining for the team and per consumer; circuit state.',
        produces: ['text/plain']
      }
    },
    async (_request, reply) => reply.type(app.metrics.registry.contentType).send(await app.metrics.registry.metrics())
  )
}

export default operationsRoutes
