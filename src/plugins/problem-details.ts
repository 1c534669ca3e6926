import { STATUS_CODES, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { setHeaderPairs, type HeaderPairs } from '../header-pairs.js'
import { failure, problemKindOf, problemKinds, type FailureDetails, type FailureKind } from '../errors.js'
import { newRequestId } from '../request-id.js'
import type { Problem } from '../schemas/problem.js'

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8'

/** Every error becomes RFC 9457 problem+json here, and only here. */
export default fp(
  async (app) => {
    app.setErrorHandler(handleError)

    app.setNotFoundHandler((request, reply) => {
      const query = request.url.indexOf('?')
      const path = query === -1 ? request.url : request.url.slice(0, query)
      // The router itself knows which methods the path has; a path with some, but not this one, is a 405.
      const allowed = app.supportedMethods.filter((method) => app.findRoute({ method, url: path }) !== null)
      if (allowed.length > 0 && !allowed.includes(request.method)) {
        const allow = allowed.join(', ')
        reply.header('allow', allow)
        return handleError(failure('GW_METHOD_NOT_ALLOWED', `${request.method} is not a method of ${path}; it has ${allow}`), request, reply)
      }
      return sendProblem(reply, {
        type: 'about:blank',
        title: 'Not Found',
        status: 404,
        detail: `No route ${request.method} ${path}; see /docs`,
        instance: path,
        request_id: request.id
      })
    })
  },
  { name: 'problem-details' }
)

/**
 * Fastify's own refusals of a request (the router's, the body parser's), as the gateway's problems. Fastify
 * would answer them `about:blank`; they are what the consumer sent, said in the consumer's terms.
 */
const REQUEST_ERRORS = new Map<string, readonly [FailureKind, string]>([
  ['FST_ERR_BAD_URL', ['GW_INVALID_REQUEST', 'The URL path is not valid percent-encoding']],
  ['FST_ERR_MAX_PARAM_LENGTH', ['GW_INVALID_REQUEST', 'A segment of the URL path is too long']],
  ['FST_ERR_CTP_INVALID_JSON_BODY', ['GW_INVALID_REQUEST', 'The body is not valid JSON, or holds a "__proto__" or "constructor" key']],
  ['FST_ERR_CTP_EMPTY_JSON_BODY', ['GW_INVALID_REQUEST', 'The body is empty; send a JSON object']],
  ['FST_ERR_CTP_INVALID_CONTENT_LENGTH', ['GW_INVALID_REQUEST', 'The body is not as long as its Content-Length says']],
  ['FST_ERR_CTP_BODY_TOO_LARGE', ['GW_BODY_TOO_LARGE', 'Request body is too large']],
  ['FST_ERR_CTP_INVALID_MEDIA_TYPE', ['GW_UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json']]
])

/**
 * Fastify's `frameworkErrors` option: the router's own refusals (bad percent-encoding, an over-long
 * path segment). Fastify raises them before any hook, outside every plugin's error handler, and
 * would answer plain JSON without the request id.
 */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  reply.header('x-request-id', request.id)
  handleError(error, request, reply)
}

/** What Node's HTTP parser refuses, by its error code; anything else it refuses is not valid HTTP. */
const CLIENT_ERRORS = new Map<string, readonly [FailureKind, string]>([
  ['HPE_HEADER_OVERFLOW', ['GW_HEADERS_TOO_LARGE', 'The request headers are larger than the gateway takes']],
  ['ERR_HTTP_REQUEST_TIMEOUT', ['GW_REQUEST_TIMEOUT', 'The request did not arrive in time']]
])
const NOT_HTTP = ['GW_INVALID_REQUEST', 'The request is not valid HTTP/1.1'] as const

/**
 * Fastify's `clientErrorHandler` option (`this` is the app): a request Node's parser refuses before Fastify
 * sees it. There is no request or reply, so the problem is written on the socket, under an id of its own
 * that the log line carries too, and the connection is closed, as Node would.
 */
export function clientErrorHandler(this: FastifyInstance, error: Error & { code?: string }, socket: Socket): void {
  const [kind, detail] = CLIENT_ERRORS.get(error.code ?? '') ?? NOT_HTTP
  const { type, title, status } = problemKinds[kind]
  const id = newRequestId()
  // Not the error itself: its rawPacket holds the request's bytes, keys included.
  this.log.info({ reqId: id, problem: type, detail, code: error.code, reason: error.message }, title)
  // A reset connection has nobody left to answer; an answer already under way (a request whose body
  // never ended, its GET answered) is cut, not corrupted by a second status line.
  const answering = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage?.headersSent === true
  if (socket.writable && !answering) {
    const body = JSON.stringify({ type, title, status, detail, request_id: id } satisfies Problem)
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: ${PROBLEM_CONTENT_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `cache-control: no-store\r\nx-request-id: ${id}\r\nconnection: close\r\n\r\n${body}`
    )
  }
  socket.destroy()
}

function handleError(error: FastifyError & FailureDetails, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { problem, headers } = answerError(error, request.url, request.id, request.log)
  setHeaderPairs(reply, headers)
  return reply.code(problem.status).send(problem)
}

/** An error's answer: the problem and its header pairs (sent after the request's own: id, rate limit). */
export interface ProblemAnswer {
  problem: Problem
  headers: HeaderPairs
}

/**
 * What an error answers, logged on `log` (the request's logger): the error handler's answer, and the
 * page pipeline's when its early path refuses a request.
 */
export function answerError(error: Error & Partial<FastifyError> & FailureDetails, url: string, requestId: string, log: FastifyBaseLogger): ProblemAnswer {
  const known = REQUEST_ERRORS.get(error.code ?? '')
  const problem = toProblem(known === undefined ? error : failure(known[0], known[1], { cause: error }), url, requestId)
  if (problem.status >= 500) {
    log.error({ err: error, problem: problem.type }, problem.title)
  } else {
    log.info({ problem: problem.type, detail: problem.detail }, problem.title)
  }
  const headers: HeaderPairs = []
  if (error.retryAfterSeconds !== undefined) headers.push('retry-after', String(error.retryAfterSeconds))
  if (problem.status === 401) headers.push('www-authenticate', 'Bearer realm="tiktok-research-gateway"')
  headers.push('content-type', PROBLEM_CONTENT_TYPE, 'cache-control', 'no-store')
  return { problem, headers }
}

function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).header('cache-control', 'no-store').send(problem)
}

function toProblem(error: Error & Partial<FastifyError> & FailureDetails, url: string, requestId: string): Problem {
  const instance = url.split('?')[0]
  const common = { instance, request_id: requestId }
  const kind = problemKindOf(error.code ?? '')
  if (kind !== undefined) {
    return {
      type: kind.type,
      title: kind.title,
      status: error.statusCode ?? 500,
      detail: error.message,
      ...common,
      ...(error.upstreamCode !== undefined && { code: error.upstreamCode }),
      ...(error.logId !== undefined && { log_id: error.logId })
    }
  }
  if (error.validation) {
    const { type, title, status } = problemKinds.GW_INVALID_REQUEST
    return { type, title, status, detail: validationDetail(error), ...common }
  }
  const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500
  return {
    type: 'about:blank',
    title: STATUS_CODES[status] ?? 'Error',
    status,
    // A bug's message may hold internals: a consumer gets the request id to quote instead.
    detail: status === 500 ? 'The gateway failed unexpectedly; quote the request_id when reporting it' : error.message,
    ...common
  }
}

function validationDetail(error: Pick<FastifyError, 'validation' | 'validationContext'>): string {
  return (error.validation ?? [])
    .map((issue) => {
      const where = `${error.validationContext ?? 'request'}${issue.instancePath.replaceAll('/', '.')}`
      const extra = (issue.params as { additionalProperty?: string }).additionalProperty
      return `${where} ${issue.message}${extra ? `: '${extra}'` : ''}`
    })
    .join('; ')
}
