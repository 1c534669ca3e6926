import { createHash, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
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
    authenticate: (request: FastifyRequest) => Promise<void>
    /** What a /metrics scraper may see; throws the 401 when METRICS_TOKEN is set and not presented. */
    authorizeMetrics: (request: FastifyRequest) => Promise<MetricsView>
  }
}

export interface ConsumerAuthOptions {
  consumers: Consumer[]
  allowAnonymous: boolean
  metricsToken?: string
}

const digest = (key: string): Buffer => createHash('sha256').update(key).digest()

/**
 * Consumers present `Authorization: Bearer <key>` or `X-API-Key: <key>`; a metrics scraper presents
 * `Authorization: Bearer <METRICS_TOKEN>`. Secrets are compared in constant time.
 */
export default fp<ConsumerAuthOptions>(
  async (app, { consumers, allowAnonymous, metricsToken }) => {
    const known = consumers.map(({ name, key, admin }) => ({ name, admin, digest: digest(key) }))
    const metricsDigest = metricsToken === undefined ? undefined : digest(metricsToken)

    app.decorateRequest('consumer', '')
    app.decorateRequest('consumerIsAdmin', false)
    app.decorate('authenticate', async (request: FastifyRequest) => {
      const key = presentedKey(request)
      if (key === undefined && allowAnonymous) {
        request.consumer = ANONYMOUS
      } else if (key === undefined) {
        throw failure('GW_UNAUTHORIZED', 'Send your consumer key as "Authorization: Bearer <key>" or "X-API-Key: <key>"')
      } else {
        // Compare against every key, matched or not, so timing says nothing about which key is close.
        const presented = digest(key)
        let match: (typeof known)[number] | undefined
        for (const candidate of known) {
          if (timingSafeEqual(candidate.digest, presented)) match ??= candidate
        }
        if (match === undefined) throw failure('GW_UNAUTHORIZED', 'The consumer key is not one this gateway knows')
        request.consumer = match.name
        request.consumerIsAdmin = match.admin
      }
    })

    // Per-consumer series name consumers and their usage, which only admins see in /v1/quota: they go to
    // the METRICS_TOKEN scraper and to admin keys. Without METRICS_TOKEN, /metrics stays open with the team's figures.
    app.decorate('authorizeMetrics', async (request: FastifyRequest): Promise<MetricsView> => {
      const key = presentedKey(request)
      const bearer = request.headers.authorization !== undefined
      if (key !== undefined && bearer && metricsDigest !== undefined && timingSafeEqual(metricsDigest, digest(key))) return 'consumers'
      if (key !== undefined) await app.authenticate(request)
      if (request.consumerIsAdmin) return 'consumers'
      if (metricsDigest !== undefined) {
        throw failure('GW_UNAUTHORIZED', '/metrics needs "Authorization: Bearer <METRICS_TOKEN>" or an admin consumer key')
      }
      return 'team'
    })
  },
  { name: 'consumer-auth' }
)

function presentedKey(request: FastifyRequest): string | undefined {
  const { authorization } = request.headers
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization)
    if (match === null) throw failure('GW_UNAUTHORIZED', 'The Authorization header must be "Bearer <key>"')
    return match[1]
  }
  const apiKey = request.headers['x-api-key']
  return typeof apiKey === 'string' && apiKey !== '' ? apiKey : undefined
}
