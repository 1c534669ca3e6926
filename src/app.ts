import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import pino, { type DestinationStream } from 'pino'
import type { Dispatcher } from 'undici'
import { loggingOptions } from './access-log.js'
import type { Config } from './config.js'
import { LogBatcher } from './log-batcher.js'
import consumerAuth from './plugins/consumer-auth.js'
import services from './plugins/services.js'
import guards from './plugins/guards.js'
import problemDetails, { frameworkErrors } from './plugins/problem-details.js'
import swagger from './plugins/swagger.js'
import exportRoutes from './routes/exports.js'
import exportJobsRoutes from './routes/export-jobs.js'
import followersRoutes from './routes/followers.js'
import followingRoutes from './routes/following.js'
import operationsRoutes from './routes/operations.js'
import profileRoutes from './routes/profile.js'
import quotaRoutes from './routes/quota.js'
import { strictIntegersKeyword } from './schemas/query.js'
import { COMPONENTS } from './schemas/components.js'

export interface AppOptions {
  config: Config
  /** Where log lines go, in batches (stdout by default); tests capture them. */
  logStream?: DestinationStream
  /** The upstream dispatcher; tests pass an undici MockAgent. */
  dispatcher?: Dispatcher
  /** The clock of tokens, quota days and the circuit breaker; tests move it. */
  now?: () => number
}

/** A caller's X-Request-Id that is kept: at most 128 characters of a safe alphabet. */
const CALLER_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

export async function buildApp({ config, logStream, dispatcher, now = Date.now }: AppOptions): Promise<FastifyInstance> {
  const logs = new LogBatcher(logStream ?? pino.destination({ dest: 1, sync: false }), config.logFlushMs)
  const app = Fastify({
    ...loggingOptions(config.logLevel, logs),
    // Request ids must be unique across replicas; a caller's X-Request-Id is kept for tracing when it
    // is a sane token, since it is echoed in every response and log line of the request.
    requestIdHeader: false,
    genReqId: (request) => {
      const id = request.headers['x-request-id']
      return typeof id === 'string' && CALLER_REQUEST_ID.test(id) ? id : randomUUID()
    },
    frameworkErrors,
    // An unknown query parameter is a typo to report, not something to drop silently.
    ajv: { customOptions: { removeAdditional: false, keywords: [strictIntegersKeyword] } }
  }).withTypeProvider<TypeBoxTypeProvider>()

  // Registered first, so it runs after every plugin's own onClose (and its last lines).
  app.addHook('onClose', (_app, done) => {
    logs.close()
    done()
  })
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done()
  })

  // The named schemas the routes refer to with ref(): for validation, serialisation and the OpenAPI components.
  for (const schema of COMPONENTS) app.addSchema(schema)
  await app.register(problemDetails)
  await app.register(swagger)
  await app.register(consumerAuth, { consumers: config.consumers, allowAnonymous: config.allowAnonymous, metricsToken: config.metricsToken })
  await app.register(services, { config, dispatcher, now })
  await app.register(guards, { config })
  await app.register(operationsRoutes)
  await app.register(followersRoutes)
  await app.register(followingRoutes)
  await app.register(profileRoutes)
  await app.register(exportRoutes)
  await app.register(quotaRoutes)
  await app.register(exportJobsRoutes)
  return app
}
