import { hostname } from 'node:os'
import { LogController, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import pino, { type DestinationStream, type SerializedError } from 'pino'
import type { LogLevel } from './config.js'

/** Paths whose values must never reach a log line, whatever logs them. */
const REDACT = ['headers.authorization', 'headers["x-api-key"]', 'req.headers.authorization', 'req.headers["x-api-key"]', 'client_secret', 'access_token']

/** pino's number for the access line's level. */
const INFO = 30

/** What one access line says. */
export interface AccessEntry {
  reqId: string
  method: string
  /** loggedUrlJson()'s answer: the early path of hits escapes each URL it remembers once. */
  urlJson: string
  status: number
  ms: number
  /** Empty before authentication. */
  consumer: string
  /** The answer was cut off after its headers: the client left, or the shutdown's deadline came. */
  aborted?: true
}

/** An answered request, as record() takes it: its access line and the route that answered (the metrics' label). */
export interface Answered extends AccessEntry {
  /** The route's path pattern; 'unmatched' when no route matched. */
  route: string
}

/** Where each answered request is counted: the app's metrics. */
export interface RequestCounter {
  requestServed(method: string, route: string, status: number, seconds: number): void
}

/**
 * Records each answered request (record(): its metrics, then its access line), whichever entry point
 * answered it: Fastify calls it as its log controller, the early path of page requests directly.
 * One access line per request, with the consumer's name, instead of Fastify's two lines. The line
 * is built in pino's own layout and written straight to the destination (a LogBatcher): pino's
 * serialisation of it was most of what logging cost a cache hit (docs/architecture.md, "The cost of
 * a cache hit"). Failed requests go through pino, with the error serialised and redacted.
 */
export class AccessLog extends LogController {
  readonly #stream: DestinationStream
  readonly #enabled: boolean
  readonly #now: () => number
  /** pino's base bindings, as it writes them. */
  readonly #base = `,"pid":${process.pid},"hostname":${JSON.stringify(hostname())}`
  /** The `"consumer"` field of each consumer, written once: the configured names are few. */
  readonly #consumerFields = new Map<string, string>([['', '']])
  #counter: RequestCounter | undefined

  constructor(level: LogLevel, stream: DestinationStream, now: () => number) {
    super()
    this.#stream = stream
    // 'silent' has no number: nothing is logged.
    this.#enabled = (pino.levels.values[level] ?? Infinity) <= INFO
    this.#now = now
  }

  override incomingRequest(): void {}

  /** Where record() counts requests from now on: the app's metrics exist once its services do, after the logger. */
  countIn(counter: RequestCounter): void {
    this.#counter = counter
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const entry = answered(request, reply)
    if (!error) this.record(entry)
    else {
      this.#count(entry)
      this.#errored(error, request, reply)
    }
  }

  /**
   * A streamed answer (an export) that ended after its headers without finishing: Fastify calls no
   * requestCompleted() for it, and it is the request that most needs its access line. Fastify's
   * onResponse never came for it either: it stays out of the request metrics, as it always has.
   */
  override streamError(error: Error & { code?: string }, request: FastifyRequest, reply: FastifyReply): void {
    if (error.code === 'ERR_STREAM_PREMATURE_CLOSE') this.write({ ...answered(request, reply), aborted: true })
    else this.#errored(error, request, reply)
  }

  /** An answered request: counted in the metrics, then its access line. */
  record(entry: Answered): void {
    this.#count(entry)
    this.write(entry)
  }

  #count({ method, route, status, ms }: Answered): void {
    this.#counter?.requestServed(method, route, status, ms / 1000)
  }

  #errored(error: Error, request: FastifyRequest, reply: FastifyReply): void {
    const { statusCode: status, elapsedTime: ms } = reply
    request.log.error({ method: request.method, url: loggedUrl(request), status, ms, consumer: request.consumer || undefined, err: error }, 'request errored')
  }

  write({ reqId, method, urlJson, status, ms, consumer, aborted }: AccessEntry): void {
    if (!this.#enabled) return
    let who = this.#consumerFields.get(consumer)
    if (who === undefined) {
      who = `,"consumer":${JSON.stringify(consumer)}`
      this.#consumerFields.set(consumer, who)
    }
    // The id (requestIdOf) and the method (an HTTP token, as Node's parser accepts it) need no escaping.
    this.#stream.write(
      `{"level":${INFO},"time":${this.#now()}${this.#base},"reqId":"${reqId}","method":"${method}","url":${urlJson},"status":${status},"ms":${toTheMicrosecond(ms)}${who}${aborted ? ',"aborted":true' : ''},"msg":"request"}\n`
    )
  }
}

/** What Fastify knows of an answered request. */
function answered(request: FastifyRequest, reply: FastifyReply): Answered {
  return {
    reqId: request.id,
    method: request.method,
    route: request.routeOptions.url ?? 'unmatched',
    urlJson: loggedUrlJson(request),
    status: reply.statusCode,
    ms: reply.elapsedTime,
    consumer: request.consumer
  }
}

/**
 * A duration in ms, as a JSON number to the microsecond, printed from integers: printing a double's
 * every digit cost as much as the rest of the line, and even the rounded double (`0.137`) 110 ns of it.
 */
function toTheMicrosecond(ms: number): string {
  const us = Math.round(ms * 1000)
  const fraction = us % 1000
  return `${(us - fraction) / 1000}.${fraction < 10 ? '00' : fraction < 100 ? '0' : ''}${fraction}`
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

/** loggedUrl() as the access line writes it: a JSON string. */
export function loggedUrlJson(request: FastifyRequest): string {
  return JSON.stringify(loggedUrl(request))
}

/** The gateway's logging as Fastify options, on the app's clock; the bench's logged baseline uses the same. */
export function loggingOptions(
  level: LogLevel,
  stream: DestinationStream,
  now: () => number = Date.now
): Pick<FastifyServerOptions, 'logger' | 'logController'> & { logController: AccessLog } {
  return {
    logger: { level, redact: { paths: REDACT, censor: '[redacted]' }, serializers: { err: serializeError }, stream, timestamp: () => `,"time":${now()}` },
    logController: new AccessLog(level, stream, now)
  }
}

/**
 * pino's error serializer, with the command an ioredis error carries cut down to its name: its
 * arguments are the password of a HELLO or AUTH, or the page of records a script was to write.
 */
function serializeError(err: Error): SerializedError {
  const serialized = pino.stdSerializers.err(err)
  // Not an error after all: pino hands it back as it came, and it is not ours to change.
  if (Object.is(serialized, err)) return serialized
  commandNamesOnly(serialized, Object.getPrototypeOf(serialized))
  return serialized
}

/**
 * Cuts each `command` to its name: in this serialized error, in the errors pino serialized inside it
 * (they share its prototype), and in arrays of errors, which pino copies as they are (ioredis's
 * `previousErrors`).
 */
function commandNamesOnly(serialized: Record<string, unknown>, errorPrototype: unknown): Record<string, unknown> {
  const isSerializedError = (value: unknown): value is Record<string, unknown> => isRecord(value) && Object.getPrototypeOf(value) === errorPrototype
  for (const [key, value] of Object.entries(serialized)) {
    if (key === 'command' && isRecord(value)) serialized[key] = { name: value.name }
    else if (isSerializedError(value)) commandNamesOnly(value, errorPrototype)
    else if (Array.isArray(value)) {
      serialized[key] = value.map((item: unknown) => (item instanceof Error ? serializeError(item) : isSerializedError(item) ? commandNamesOnly(item, errorPrototype) : item))
    }
  }
  return serialized
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}
