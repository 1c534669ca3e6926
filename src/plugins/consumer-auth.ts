import { hash } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { ANONYMOUS, type Consumer } from '../config.js'
import { failure } from '../errors.js'
import type { MetricsView } from '../metrics.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated consumer's name ("anonymous" when anonymous access is allowed). */
    consumer: string
    consumerIsAdmin: boolean
  }
  interface FastifyInstance {
    /** An onRequest hook: names the consumer, or fails with a 401. Synchronous: no promise per request. */
    authenticate: (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void
    /** What a /metrics scraper may see; throws the 401 when METRICS_TOKEN is set and not presented. */
    authorizeMetrics: (request: FastifyRequest) => Promise<MetricsView>
  }
}

export interface ConsumerAuthOptions {
  consumers: Consumer[]
  allowAnonymous: boolean
  metricsToken?: string
}

const digest = (key: string): string => hash('sha256', key, 'base64')

/**
 * Consumers present `Authorization: Bearer <key>` or `X-API-Key: <key>`; a metrics scraper presents
 * `Authorization: Bearer <METRICS_TOKEN>`. A presented secret is hashed once and its digest looked
 * up: what a lookup's timing could reveal is how close a digest is to a known one, which says
 * nothing about the secret itself, and raw secrets are never compared.
 */
export default fp<ConsumerAuthOptions>(
  async (app, { consumers, allowAnonymous, metricsToken }) => {
    const known = new Map(consumers.map(({ name, key, admin }) => [digest(key), { name, admin }]))
    const metricsDigest = metricsToken === undefined ? undefined : digest(metricsToken)

    /** Names the request's consumer; throws the 401. */
    function identify(request: FastifyRequest, key: string | undefined): void {
      if (key === undefined && allowAnonymous) {
        request.consumer = ANONYMOUS
        return
      }
      if (key === undefined) throw failure('GW_UNAUTHORIZED', 'Send your consumer key as "Authorization: Bearer <key>" or "X-API-Key: <key>"')
      const match = known.get(digest(key))
      if (match === undefined) throw failure('GW_UNAUTHORIZED', 'The consumer key is not one this gateway knows')
      request.consumer = match.name
      request.consumerIsAdmin = match.admin
    }

    app.decorateRequest('consumer', '')
    app.decorateRequest('consumerIsAdmin', false)
    app.decorate('authenticate', (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
      try {
        identify(request, presentedKey(request))
      } catch (err) {
        done(err as Error)
        return
      }
      done()
    })

    // Per-consumer series name consumers and their usage, which only admins see in /v1/quota: they go to
    // the METRICS_TOKEN scraper and to admin keys. Without METRICS_TOKEN, /metrics stays open with the team's figures.
    app.decorate('authorizeMetrics', async (request: FastifyRequest): Promise<MetricsView> => {
      const key = presentedKey(request)
      const bearer = request.headers.authorization !== undefined
      if (key !== undefined && bearer && metricsDigest !== undefined && metricsDigest === digest(key)) return 'consumers'
      if (key !== undefined) identify(request, key)
      if (request.consumerIsAdmin) return 'consumers'
      if (metricsDigest !== undefined) {
        throw failure('GW_UNAUTHORIZED', '/metrics needs "Authorization: Bearer <METRICS_TOKEN>" or an admin consumer key')
      }
      return 'team'
    })
  },
  { name: 'consumer-auth' }
)

const BEARER = /^Bearer\s+(\S+)\s*$/i

function presentedKey(request: FastifyRequest): string | undefined {
  const { authorization } = request.headers
  if (authorization !== undefined) {
    const key = BEARER.exec(authorization)?.[1]
    if (key === undefined) throw failure('GW_UNAUTHORIZED', 'The Authorization header must be "Bearer <key>"')
    return key
  }
  const apiKey = request.headers['x-api-key']
  return typeof apiKey === 'string' && apiKey !== '' ? apiKey : undefined
}
