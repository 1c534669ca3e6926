import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { problemTypesTable } from '../schemas/problem.js'

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
            'Authorize with your consumer key (the routes marked public need none). Every response carries `X-Request-Id`.\n\n' +
            'Errors are RFC 9457 `application/problem+json`; their `type` is one of these, or `about:blank` for a plain ' +
            'HTTP error such as an unknown route:\n\n' +
            problemTypesTable()
        },
        servers: [{ url: '/', description: 'The gateway serving this document' }],
        tags: [
          { name: 'followers', description: 'Query User Followers' },
          { name: 'following', description: 'Query User Following' },
          { name: 'profile', description: 'Query User Info' },
          { name: 'exports', description: 'Whole lists: streamed as NDJSON and resumable, or as background jobs that outlast the daily quota' },
          { name: 'quota', description: 'Daily upstream budgets' },
          { name: 'operations', description: 'Health, readiness and metrics' }
        ],
        // Either way of presenting a consumer key; public routes say `security: []`.
        security: [{ bearerAuth: [] }, { apiKey: [] }],
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer', description: 'Your consumer key as a bearer token' },
            apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'Your consumer key' },
            metricsToken: { type: 'http', scheme: 'bearer', description: "The gateway's METRICS_TOKEN, for a Prometheus scraper (/metrics only)" }
          }
        }
      },
      // Named schemas (an `$id`, see src/schemas/components.ts) keep their name under components.schemas.
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) }
    })
    await app.register(swaggerUi, { routePrefix: '/docs' })
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  },
  { name: 'swagger' }
)
