import { LogController, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import type { DestinationStream } from 'pino'
import type { LogLevel } from './config.js'

/** Paths whose values must never reach a log line, whatever logs them. */
const REDACT = ['headers.authorization', 'headers["x-api-key"]', 'req.headers.authorization', 'req.headers["x-api-key"]', 'client_secret', 'access_token']

/**
 * One access line per request, with the consumer's name, instead of Fastify's two lines:
 * on a cache hit, logging is the largest cost the gateway adds (see bench/RESULTS.md).
 */
class AccessLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = {
      method: request.method,
      url: loggedUrl(request),
      status: reply.statusCode,
      ms: reply.elapsedTime,
      consumer: request.consumer || undefined
    }
    if (error) request.log.error({ ...line, err: error }, 'request errored')
    else request.log.info(line, 'request')
  }
}

/**
 * The path and the route's own query parameters: a consumer key pasted into a query string
 * (`?api_key=`) or anything else a route does not take stays out of the logs.
 */
function loggedUrl(request: FastifyRequest): string {
  const start = request.url.indexOf('?')
  if (start === -1) return request.url
  const path = request.url.slice(0, start)
  const schema = request.routeOptions.schema?.querystring
  const properties = typeof schema === 'object' && schema !== null && 'properties' in schema ? schema.properties : undefined
  const known = new URLSearchParams()
  for (const [name, value] of new URLSearchParams(request.url.slice(start + 1))) {
    if (typeof properties === 'object' && properties !== null && Object.hasOwn(properties, name)) known.append(name, value)
  }
  return known.size === 0 ? path : `${path}?${known.toString()}`
}

/** The gateway's logging as Fastify options; the bench's logged baseline uses the same. */
export function loggingOptions(level: LogLevel, stream?: DestinationStream): Pick<FastifyServerOptions, 'logger' | 'logController'> {
  return {
    logger: { level, redact: { paths: REDACT, censor: '[redacted]' }, ...(stream && { stream }) },
    logController: new AccessLog()
  }
}
