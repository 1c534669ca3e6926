import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { DestinationStream } from 'pino'
import type { Dispatcher } from 'undici'
import type { Config } from './config.js'
import consumerAuth from './plugins/consumer-auth.js'
import followerPages from './plugins/follower-pages.js'
import problemDetails from './plugins/problem-details.js'
import swagger from './plugins/swagger.js'
import followersRoutes from './routes/followers.js'
import healthRoutes from './routes/health.js'

export interface AppOptions {
  config: Config
  /** Where log lines go (stdout by default); tests capture them. */
  logStream?: DestinationStream
  /** The upstream dispatcher; tests pass an undici MockAgent. */
  dispatcher?: Dispatcher
  /** The clock the token manager reads; tests move it to expire tokens. */
  now?: () => number
}

/** Paths whose values must never reach a log line, whatever logs them. */
const REDACT = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'headers["x-api-key"]',
  'client_secret',
  'access_token',
  '*.client_secret',
  '*.access_token'
]

export async function buildApp({ config, logStream, dispatcher, now }: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: { level: config.logLevel, redact: { paths: REDACT, censor: '[redacted]' }, ...(logStream && { stream: logStream }) },
    // Request ids must be unique across replicas; a caller's X-Request-Id is kept for tracing.
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // An unknown query parameter is a typo to report, not something to drop silently.
    ajv: { customOptions: { removeAdditional: false } }
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })

  await app.register(problemDetails)
  await app.register(swagger)
  await app.register(consumerAuth, { consumers: config.consumers, allowAnonymous: config.allowAnonymous })
  await app.register(followerPages, { config, dispatcher, now })
  await app.register(healthRoutes)
  await app.register(followersRoutes)
  return app
}
