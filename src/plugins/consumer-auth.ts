import { hash } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { ANONYMOUS, type Consumer as ConsumerConfig } from '../config.js'
import { failure } from '../errors.js'
import type { MetricsView } from '../metrics.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated consumer's name ("anonymous" when anonymous access is allowed). */
    consumer: string
    consumerIsAdmin: boolean
  }
  interface FastifyInstance {
    /** The consumer a request's headers name; throws the 401. */
    consumerOf: (headers: IncomingHttpHeaders) => Consumer
    /** An onRequest hook: names the consumer, or fails with a 401. Synchronous: no promise per request. */
    authenticate: (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void
    /** What a /metrics scraper may see; throws the 401 when METRICS_TOKEN is set and not presented. */
    authorizeMetrics: (request: FastifyRequest) => Promise<MetricsView>
  }
}

export interface Consumer {
  name: string
  admin: boolean
}

export interface ConsumerAuthOptions {
  consumers: ConsumerConfig[]
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
    const known = new Map<string, Consumer>(consumers.map(({ name, key, admin }) => [digest(key), { name, admin }]))
    const metricsDigest = metricsToken === undefined ? undefined : digest(metricsToken)
    const anonymous: Consumer = { name: ANONYMOUS, admin: false }

    const consumerOfDigest = (keyDigest: string): Consumer => {
      const match = known.get(keyDigest)
      if (match === undefined) throw failure('GW_UNAUTHORIZED', 'The consumer key is not one this gateway knows')
      return match
    }
    const consumerOf = (headers: IncomingHttpHeaders): Consumer => {
      const key = presentedKey(headers)
      if (key === undefined && allowAnonymous) return anonymous
      if (key === undefined) throw failure('GW_UNAUTHORIZED', 'Send your consumer key as "Authorization: Bearer <key>" or "X-API-Key: <key>"')
      return consumerOfDigest(digest(key))
    }

    app.decorate('consumerOf', consumerOf)
    app.decorateRequest('consumer', '')
    app.decorateRequest('consumerIsAdmin', false)
    app.decorate('authenticate', (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
      let consumer
      try {
        consumer = consumerOf(request.headers)
      } catch (err) {
        done(err as Error)
        return
      }
      request.consumer = consumer.name
      request.consumerIsAdmin = consumer.admin
      done()
    })

    // Per-consumer series name consumers and their usage, which only admins see in /v1/quota: they go to
    // the METRICS_TOKEN scraper and to admin keys. Without METRICS_TOKEN, /metrics stays open with the team's figures.
    app.decorate('authorizeMetrics', async (request: FastifyRequest): Promise<MetricsView> => {
      const key = presentedKey(request.headers)
      if (key !== undefined) {
        const keyDigest = digest(key)
        // The token is a bearer token only; as X-API-Key it is an unknown consumer key.
        if (key === bearerKey(request.headers.authorization) && keyDigest === metricsDigest) return 'consumers'
        const consumer = consumerOfDigest(keyDigest)
        request.consumer = consumer.name
        if (consumer.admin) return 'consumers'
      }
      if (metricsDigest !== undefined) {
        throw failure('GW_UNAUTHORIZED', '/metrics needs "Authorization: Bearer <METRICS_TOKEN>" or an admin consumer key')
      }
      return 'team'
    })
  },
  { name: 'consumer-auth' }
)

const BEARER = /^Bearer\s+(\S+)\s*$/i

const bearerKey = (authorization: string | undefined): string | undefined => (authorization === undefined ? undefined : BEARER.exec(authorization)?.[1])

/**
 * A bearer key, else X-API-Key: an Authorization header of another scheme (a proxy's Basic) or an
 * empty one does not hide an X-API-Key. Alone, such a header is refused, not taken as no key.
 */
function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const bearer = bearerKey(headers.authorization)
  if (bearer !== undefined) return bearer
  const apiKey = headers['x-api-key']
  if (typeof apiKey === 'string' && apiKey !== '') return apiKey
  if (headers.authorization) throw failure('GW_UNAUTHORIZED', 'The Authorization header must be "Bearer <key>"')
  return undefined
}
