import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { QuotaReport } from '../schemas/quota.js'
import { problemResponses } from '../schemas/problem.js'
import { SECURITY } from '../plugins/swagger.js'

const quotaRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/quota',
    {
      onRequest: app.authenticate,
      config: { rateLimit: {} },
      schema: {
        tags: ['quota'],
        summary: "Today's upstream budget: the team's and yours",
        description:
          'Counts calls to TikTok (cache hits are free) per UTC day. `consumers` holds the calling consumer, or every ' +
          'consumer when the key is an admin key (GATEWAY_ADMIN_KEYS).',
        security: SECURITY,
        response: { 200: QuotaReport, ...problemResponses({ 401: 'Missing or unknown consumer key', 429: 'Too many requests' }) }
      }
    },
    async (request) => app.quota.report(request.consumerIsAdmin ? undefined : request.consumer)
  )
}

export default quotaRoutes
