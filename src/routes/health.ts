import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { failure } from '../errors.js'
import { problemResponses } from '../schemas/problem.js'

const Status = Type.Object({ status: Type.String() })

/** Liveness and readiness for load balancers and orchestrators; no consumer key needed. */
const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
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
          "Not ready (503) while TikTok rejects the gateway's client credentials. Checks no upstream on its own: " +
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
}

export default healthRoutes
