import { createServer, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Dispatcher } from 'undici'
import { loggingOptions } from './access-log.js'
import type { Config } from './config.js'
import { failure } from './errors.js'
import { LogBatcher, logDestination, type BatchDestination } from './log-batcher.js'
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
  /** The clock of tokens, quota days and the circuit breaker; tests move it. */
  now?: () => number
}

/**
 * The bound on a slow client that docs/api.md states (problem 408): a request's headers, and the
 * whole request with its body, arrive within 60 s of its start. Node checks both every connectionsCheckingInterval, whose
 * default of 30 s let a stalled client hold its connection up to 90 s. Node's requestTimeout ends once
 * the request is received, so it does not cut an export's long answer.
 */
const REQUEST_ARRIVAL_TIMEOUT_MS = 60_000
const TIMEOUT_CHECK_INTERVAL_MS = 1_000

/** More than a listener's backlog (511 by default): the turns the close waits for the connections it holds. */
const MAX_DRAIN_TURNS = 1024

/**
 * Ends a connection once no answer is under way on it: at once, or when the last answer queued on it
 * (pipelined requests wait their turn) has been handed to the OS. Like Node, the answer under way is
 * the socket's unfinished response; Node hands it the next queued one before 'finish' listeners added
 * here run.
 */
function endWhenAnswered(socket: Socket): void {
  const response = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
  if (!response || response.writableFinished) socket.destroy()
  else response.once('finish', () => endWhenAnswered(socket))
}

export async function buildApp({ config, logStream, dispatcher, now = Date.now }: AppOptions): Promise<FastifyInstance> {
  // Once closing, answers to in-flight requests end their connections (a kept-alive socket would
  // otherwise hold server.close() open until the client drops it); fresh hits then take the routed
  // path too, whose onSend hook does so.
  let closing = false
  /** Open connections, for the close to end those with no answer under way (see preClose). */
  const connections = new Set<Socket>()
  /** Connections taken so far, to tell when the listener's backlog is empty. */
  let taken = 0
  const logs = new LogBatcher(logStream ?? logDestination(1), config.logFlushMs)
  const logging = loggingOptions(config.logLevel, logs, now)
  const app = Fastify({
    ...logging,
    // Fresh cache hits are answered before Fastify's router (see FastHits); app.inject() always takes the routed path.
    serverFactory: (handler, options) => {
      // Node's own check for a Host header answers a bare 400, with no problem, id or log line: the routed path checks it instead.
      const server = createServer(
        { requireHostHeader: false, headersTimeout: REQUEST_ARRIVAL_TIMEOUT_MS, connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS },
        (req, res) => {
          if (closing || req.headers.host === undefined || !app.fastHits.serve(req, res)) handler(req, res)
        }
      )
      // What Fastify sets on a server it creates itself (it has filled in its defaults by now).
      const { keepAliveTimeout, requestTimeout, connectionTimeout } = options as Record<'keepAliveTimeout' | 'requestTimeout' | 'connectionTimeout', number>
      server.keepAliveTimeout = keepAliveTimeout
      server.requestTimeout = requestTimeout
      server.setTimeout(connectionTimeout)
      server.on('connection', (socket: Socket) => {
        taken++
        connections.add(socket)
        socket.once('close', () => connections.delete(socket))
      })
      return server
    },
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
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    if (request.headers.host === undefined && request.raw.httpVersion === '1.1') done(failure('GW_INVALID_REQUEST', 'An HTTP/1.1 request needs a Host header'))
    else done()
  })

  // The named schemas the routes refer to with ref(): for validation, serialisation and the OpenAPI components.
  for (const schema of COMPONENTS) app.addSchema(schema)
  await app.register(problemDetails)
  await app.register(swagger)
  await app.register(consumerAuth, { consumers: config.consumers, allowAnonymous: config.allowAnonymous, metricsToken: config.metricsToken })
  await app.register(services, { config, dispatcher, now })
  await app.register(guards, { config })
  app.decorate('fastHits', new FastHits(app, logging.logController))
  let cutOff: NodeJS.Timeout | undefined
  app.addHook('preClose', (done) => {
    closing = true
    // Closing the listener resets the connections the kernel completed but the server has not taken
    // yet, requests sent included. The event loop first turns until a turn takes no new connection
    // (Node takes about one a turn); that turn also reads the requests of the last one taken, and
    // all are answered with Connection: close. Bounded, in case clients keep connecting.
    const turn = (turns: number, before: number) =>
      setImmediate(() => (taken === before || turns === MAX_DRAIN_TURNS ? closeConnections() : turn(turns + 1, taken)))
    const closeConnections = () => {
      // Node's closeIdleConnections() (Fastify's, on close) spares a connection that has sent no request,
      // or part of one, until its headers timeout (60 s, past the grace period), and a kept-alive one
      // whose answer was under way stays open once that answer ends.
      for (const socket of connections) endWhenAnswered(socket)
      // An answer still under way at the deadline (an export to a reader that stopped reading) is cut,
      // so that the close ends within its grace period.
      cutOff = setTimeout(() => {
        for (const socket of connections) socket.destroy()
      }, config.requestDeadlineMs).unref()
      done()
    }
    // preClose may run in the poll phase, whose check phase then comes before any new poll: the first turn never counts.
    turn(0, -1)
  })
  app.addHook('onClose', (_app, done) => {
    clearTimeout(cutOff)
    done()
  })
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close')
    done(null, payload)
  })
  await app.register(operationsRoutes)
  await app.register(followersRoutes)
  await app.register(followingRoutes)
  await app.register(profileRoutes)
  await app.register(exportRoutes)
  await app.register(quotaRoutes)
  await app.register(exportJobsRoutes)
  return app
}
