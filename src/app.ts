import Fastify, { type FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Dispatcher } from 'undici'
import { systemClock, type Clock } from './clock.js'
import { loggingOptions } from './access-log.js'
import type { Config } from './config.js'
import { failure } from './errors.js'
import { lifecycle, REQUEST_ARRIVAL_TIMEOUT_MS } from './lifecycle.js'
import { LogBatcher, logDestination, type BatchDestination } from './log-batcher.js'
import { PagePipeline } from './page-pipeline.js'
import consumerAuth from './plugins/consumer-auth.js'
import services from './plugins/services.js'
import guards from './plugins/guards.js'
import problemDetails, { clientErrorHandler, frameworkErrors } from './plugins/problem-details.js'
import swagger from './plugins/swagger.js'
import exportRoutes from './routes/exports.js'
import exportJobsRoutes from './routes/export-jobs.js'
import followersRoutes from './routes/followers.js'
import followingRoutes from './routes/following.js'
import operationsRoutes from './routes/operations.js'
import { FastHits } from './routes/page-reply.js'
import profileRoutes from './routes/profile.js'
import quotaRoutes from './routes/quota.js'
import { requestIdOf } from './request-id.js'
import { strictIntegersKeyword } from './schemas/query.js'
import { COMPONENTS } from './schemas/components.js'
import { buildValidator } from './schemas/validator.js'

export interface AppOptions {
  config: Config
  /** Where log lines go, in batches (stdout by default); tests capture them. */
  logStream?: BatchDestination
  /** The upstream dispatcher; tests pass an undici MockAgent. */
  dispatcher?: Dispatcher
  /** The clock the gateway reads and waits on; tests move it. */
  clock?: Clock
  /** The load signal that sheds requests, the event loop's lag in ms (under-pressure's sample by default); tests inject it. */
  eventLoopDelay?: () => number
}

export async function buildApp({ config, logStream, dispatcher, clock = systemClock, eventLoopDelay }: AppOptions): Promise<FastifyInstance> {
  const logs = new LogBatcher(logStream ?? logDestination(1), config.logFlushMs)
  const logging = loggingOptions(config.logLevel, logs, clock.now)
  const life = lifecycle({ requestDeadlineMs: config.requestDeadlineMs, answerEarly: (req, res) => app.fastHits.serve(req, res) })
  const app = Fastify({
    ...logging,
    // The HTTP server, with fresh cache hits answered before Fastify's router (src/lifecycle.ts, src/page-pipeline.ts); app.inject() always takes the routed path.
    serverFactory: life.serverFactory,
    // A request that reaches a connection kept through the close (one whose answer was under way) is
    // answered as usual, and its Connection: close ends the connection, rather than Fastify's own 503 in its own format.
    return503OnClosing: false,
    requestTimeout: REQUEST_ARRIVAL_TIMEOUT_MS,
    requestIdHeader: false,
    genReqId: requestIdOf,
    frameworkErrors,
    clientErrorHandler,
    // An unknown query parameter is a typo to report, not something to drop silently.
    ajv: { customOptions: { removeAdditional: false, keywords: [strictIntegersKeyword] } },
    // A JSON body is validated as typed; only the text parts (query string, path) are coerced.
    schemaController: { compilersFactory: { buildValidator } }
  }).withTypeProvider<TypeBoxTypeProvider>()

  // Registered first, so it runs after every plugin's own onClose (and its last lines).
  app.addHook('onClose', (_app, done) => {
    logs.close()
    done()
  })
  app.addHook('onRequest', function requestIdAndHost(request, reply, done) {
    reply.header('x-request-id', request.id)
    if (request.headers.host === undefined && request.raw.httpVersion === '1.1') done(failure('GW_INVALID_REQUEST', 'An HTTP/1.1 request needs a Host header'))
    else done()
  })

  // The named schemas the routes refer to with ref(): for validation, serialisation and the OpenAPI components.
  for (const schema of COMPONENTS) app.addSchema(schema)
  await app.register(problemDetails)
  await app.register(swagger)
  await app.register(consumerAuth, { consumers: config.consumers, allowAnonymous: config.allowAnonymous, metricsToken: config.metricsToken })
  await app.register(services, { config, dispatcher, clock })
  await app.register(guards, { config, clock, eventLoopDelay })
  logging.logController.countIn(app.metrics)
  app.decorate('pagePipeline', new PagePipeline(app, logging.logController))
  app.decorate('fastHits', new FastHits(app.pages, app.pagePipeline))
  // The close: drain the connections, end them with Connection: close, cut what outlives the deadline.
  await app.register(life.plugin)
  await app.register(operationsRoutes)
  await app.register(followersRoutes)
  await app.register(followingRoutes)
  await app.register(profileRoutes)
  await app.register(exportRoutes)
  await app.register(quotaRoutes)
  await app.register(exportJobsRoutes)
  return app
}
