import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { QuotaReport } from '../schemas/quota.js'
import { RATE_LIMIT_HEADERS, REQUEST_ID_HEADER } from '../schemas/headers.js'
import { problemResponses } from '../schemas/problem.js'
import { ref } from '../schemas/named.js'
import { NoQuery } from '../schemas/query.js'

const quotaRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/quota',
    {
      onRequest: app.authenticate,
      // After authentication and validation, so that the limit is the consumer's, not the client address's.
      preHandler: app.limitConsumerRate,
      schema: {
        operationId: 'getQuota',
        tags: ['quota'],
        summary: "Today's upstream budget: the team's and yours",
        description:
          'Counts calls to TikTok (cache hits are free) per UTC day. `consumers` holds the calling consumer, or every ' +
          'consumer when the key is an admin key (GATEWAY_ADMIN_KEYS).',
        querystring: NoQuery,
        response: {
          200: {
            description: "Today's counts",
            headers: { ...REQUEST_ID_HEADER, ...RATE_LIMIT_HEADERS },
            content: { 'application/json': { schema: ref(QuotaReport) } }
          },
          ...problemResponses(['GW_INVALID_REQUEST', 'GW_UNAUTHORIZED', 'GW_CONSUMER_RATE_LIMITED', 'GW_OVERLOADED'], { instance: '/v1/quota', rateLimited: true })
        }
      }
    },
    async (request) => app.quota.report(request.consumerIsAdmin ? undefined : request.consumer)
  )
}

export default quotaRoutes
