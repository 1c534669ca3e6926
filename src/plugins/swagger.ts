import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'

/** Either way of presenting a consumer key. */
export const SECURITY: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { apiKey: [] }]

/** The OpenAPI document comes from the route schemas; Swagger UI at /docs can "Try it out" with a key. */
export default fp(
  async (app) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'TikTok Research Gateway',
          version: '1.0.0',
          description:
            'Cached, documented GET access to the TikTok Research API for internal consumers. ' +
            'Authorize with your consumer key; errors are RFC 9457 `application/problem+json`.'
        },
        tags: [
          { name: 'followers', description: 'Query User Followers' },
          { name: 'quota', description: 'Daily upstream budgets' },
          { name: 'operations', description: 'Health, readiness and metrics' }
        ],
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer', description: 'Your consumer key as a bearer token' },
            apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'Your consumer key' }
          }
        }
      }
    })
    await app.register(swaggerUi, { routePrefix: '/docs' })
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  },
  { name: 'swagger' }
)
