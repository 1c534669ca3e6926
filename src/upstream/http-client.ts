import { setTimeout as sleep } from 'node:timers/promises'
import type { IncomingHttpHeaders } from 'node:http'
import { Agent, request, errors, type Dispatcher } from 'undici'
import type { FastifyBaseLogger } from 'fastify'
import { failure, type GatewayError } from '../errors.js'
import { CircuitBreaker } from './circuit-breaker.js'

export interface UpstreamCall {
  endpoint: string
  /** The HTTP status, or the failure code when no reply came. */
  outcome: string
  seconds: number
}

export interface HttpClientOptions {
  baseUrl: string
  connectTimeoutMs: number
  timeoutMs: number
  retries: number
  breakerFailureThreshold: number
  breakerCooldownSeconds: number
  now: () => number
  /** Tests pass a MockAgent; otherwise the client owns a keep-alive Agent. */
  dispatcher?: Dispatcher
  /** Told of every attempt, for metrics. */
  onCall?: (call: UpstreamCall) => void
}

export interface UpstreamRequest {
  endpoint: string
  path: string
  headers: Record<string, string>
  body: string
  log: FastifyBaseLogger
  /** Runs before every attempt, retries included; throwing stops the request (quota reservation). */
  beforeAttempt?: () => Promise<void>
}

export interface UpstreamReply {
  status: number
  headers: IncomingHttpHeaders
  /** The parsed JSON body, or undefined when the body was not JSON (a 504 from TikTok's edge is HTML). */
  json: unknown
}

const BACKOFF_BASE_MS = 100
const BACKOFF_CAP_MS = 2000

/**
 * POSTs to the Research API: explicit timeouts, bounded jittered retries for network errors and
 * 5xx only, and a circuit breaker over the outcome after retries.
 */
export class HttpClient {
  readonly #options: HttpClientOptions
  readonly #dispatcher: Dispatcher
  readonly #ownsDispatcher: boolean
  readonly breaker: CircuitBreaker

  constructor(options: HttpClientOptions) {
    this.#options = options
    this.#ownsDispatcher = options.dispatcher === undefined
    this.#dispatcher = options.dispatcher ?? new Agent({ connect: { timeout: options.connectTimeoutMs } })
    this.breaker = new CircuitBreaker(options.breakerFailureThreshold, options.breakerCooldownSeconds * 1000, options.now)
  }

  async post(upstream: UpstreamRequest): Promise<UpstreamReply> {
    this.breaker.enter()
    try {
      const reply = await this.#postWithRetries(upstream)
      if (reply.status >= 500) this.breaker.failed()
      else this.breaker.succeeded()
      return reply
    } catch (err) {
      // Only TikTok's failures count; a quota refusal before any call says nothing about TikTok.
      if ((err as GatewayError).statusCode >= 500) this.breaker.failed()
      else this.breaker.abandoned()
      throw err
    }
  }

  async #postWithRetries({ endpoint, path, headers, body, log, beforeAttempt }: UpstreamRequest): Promise<UpstreamReply> {
    const { baseUrl, timeoutMs, retries, onCall } = this.#options
    for (let attempt = 0; ; attempt++) {
      await beforeAttempt?.()
      const started = performance.now()
      // Headers carry the bearer token: the logger's redaction paths hide it.
      log.trace({ upstream: endpoint, path, headers, attempt }, 'upstream request')
      try {
        const response = await request(baseUrl + path, {
          method: 'POST',
          headers,
          body,
          dispatcher: this.#dispatcher,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs
        })
        const text = await response.body.text()
        const status = response.statusCode
        const ms = elapsedMs(started)
        onCall?.({ endpoint, outcome: String(status), seconds: ms / 1000 })
        log.info({ upstream: endpoint, status, attempt, ms }, 'upstream call')
        if (status >= 500 && attempt < retries) {
          await backoff(attempt)
          continue
        }
        return { status, headers: response.headers, json: parseJson(text) }
      } catch (err) {
        const mapped = networkFailure(err)
        const ms = elapsedMs(started)
        onCall?.({ endpoint, outcome: mapped.code, seconds: ms / 1000 })
        log.warn({ upstream: endpoint, attempt, ms, err: mapped.cause }, 'upstream call failed')
        if (attempt >= retries) throw mapped
        await backoff(attempt)
      }
    }
  }

  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close()
  }
}

function elapsedMs(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10
}

/** Full jitter. The timer stays ref'd: a caller is awaiting it, and it is bounded by the cap. */
function backoff(attempt: number): Promise<void> {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt)
  return sleep(Math.random() * ceiling)
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'])

/** undici failures mapped once: cannot connect -> 503, too slow -> 504, anything else mid-exchange -> 502. */
function networkFailure(err: unknown): GatewayError {
  const code = (err as { code?: string }).code ?? ''
  if (err instanceof errors.ConnectTimeoutError || UNREACHABLE.has(code)) {
    return failure('GW_UPSTREAM_UNAVAILABLE', 'Could not connect to the TikTok Research API', { cause: err })
  }
  if (err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError) {
    return failure('GW_UPSTREAM_TIMEOUT', 'The TikTok Research API did not answer in time', { cause: err })
  }
  return failure('GW_UPSTREAM_ERROR', 'The connection to the TikTok Research API failed mid-request', { cause: err })
}
