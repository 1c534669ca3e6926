import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import type { FastifyServerFactory } from 'fastify'

/**
 * The bound on a slow client that docs/api.md states (problem 408): a request's headers, and the whole request with
 * its body, arrive within 60 s of its start. Node checks both every connectionsCheckingInterval, whose
 * default of 30 s let a stalled client hold its connection up to 90 s. Node's requestTimeout ends once
 * the request is received, so it does not cut an export's long answer.
 */
export const REQUEST_ARRIVAL_TIMEOUT_MS = 60_000
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

export interface LifecycleOptions {
  /** REQUEST_DEADLINE_MS: how long the close lets an answer under way run before cutting it. */
  requestDeadlineMs: number
  /** The early path of page requests: answers `req` before Fastify's router, or returns false. */
  answerEarly: (req: IncomingMessage, res: ServerResponse) => boolean
}

/**
 * The server's life from the first connection to the last: the HTTP server (Fastify's serverFactory
 * option, with the early path in front of Fastify's router) and the close (the plugin: a drain of
 * the connections the server holds, then a cut-off at the request deadline). One closure, because
 * both sides share the connections and whether the app is closing.
 */
export function lifecycle({ requestDeadlineMs, answerEarly }: LifecycleOptions) {
  // Once closing, answers to in-flight requests end their connections (a kept-alive socket would
  // otherwise hold server.close() open until the client drops it); page requests then take the routed
  // path too, whose onSend hook does so.
  let closing = false
  /** Open connections, for the close to end those with no answer under way. */
  const connections = new Set<Socket>()
  /** Connections taken so far, to tell when the listener's backlog is empty. */
  let taken = 0

  const serverFactory: FastifyServerFactory = (handler, options) => {
    // Node's own check for a Host header answers a bare 400, with no problem, id or log line: the routed path checks it instead.
    const server = createServer(
      { requireHostHeader: false, headersTimeout: REQUEST_ARRIVAL_TIMEOUT_MS, connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS },
      (req, res) => {
        if (closing || req.headers.host === undefined || !answerEarly(req, res)) handler(req, res)
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
  }

  const plugin = fp(
    async (app) => {
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
          }, requestDeadlineMs).unref()
          done()
        }
        // preClose may run in the poll phase, whose check phase then comes before any new poll: the first turn never counts.
        turn(0, -1)
      })
      app.addHook('onClose', (_app, done) => {
        clearTimeout(cutOff)
        done()
      })
      app.addHook('onSend', function closeWhenClosing(_request, reply, payload, done) {
        if (closing) reply.header('connection', 'close')
        done(null, payload)
      })
    },
    { name: 'lifecycle' }
  )

  return { serverFactory, plugin }
}
