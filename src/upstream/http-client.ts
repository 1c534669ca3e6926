import type { IncomingHttpHeaders } from 'node:http'
import { Agent, request, type Dispatcher } from 'undici'
import type { FastifyBaseLogger } from 'fastify'
import type { Clock } from '../clock.js'
import { networkFailure, tooLargeFailure, type UpstreamReply } from './failures.js'

export interface UpstreamCall {
  endpoint: string
  /** The HTTP status, or the failure code when no reply came. */
  outcome: string
  seconds: number
}

export interface HttpClientOptions {
  baseUrl: string
  connectTimeoutMs: number
  /** Bounds a whole attempt: connecting, headers and body. */
  timeoutMs: number
  /** A longer reply is abandoned as soon as it passes this. */
  maxBodyBytes: number
  clock: Clock
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
}

/**
 * POSTs to the Research API, one attempt at a time, bounded in time and size; undici's failures are
 * mapped by failures.ts. Whether to try again is decided above it.
 */
export class HttpClient {
  readonly #options: HttpClientOptions
  readonly #dispatcher: Dispatcher
  readonly #ownsDispatcher: boolean

  constructor(options: HttpClientOptions) {
    this.#options = options
    this.#ownsDispatcher = options.dispatcher === undefined
    this.#dispatcher = options.dispatcher ?? new Agent({ connect: { timeout: options.connectTimeoutMs } })
  }

  async send({ endpoint, path, headers, body, log }: UpstreamRequest): Promise<UpstreamReply> {
    const { baseUrl, timeoutMs, onCall, clock } = this.#options
    const started = performance.now()
    // Headers carry the bearer token: the logger's redaction paths hide it.
    log.trace({ upstream: endpoint, path, headers }, 'upstream request')
    // A timer cleared when the call ends: AbortSignal.timeout() would hold its timer and signal until a full GC.
    const deadline = new AbortController()
    const cancelDeadline = clock.setTimeout(() => deadline.abort(new DOMException('The upstream call timed out', 'TimeoutError')), timeoutMs)
    try {
      const response = await request(baseUrl + path, { method: 'POST', headers, body, dispatcher: this.#dispatcher, signal: deadline.signal })
      const text = await this.#readBody(response.body, response.headers)
      const status = response.statusCode
      const ms = elapsedMs(started)
      onCall?.({ endpoint, outcome: String(status), seconds: ms / 1000 })
      log.info({ upstream: endpoint, status, ms }, 'upstream call')
      return { status, headers: response.headers, json: parseJson(text) }
    } catch (err) {
      const mapped = networkFailure(err)
      const ms = elapsedMs(started)
      onCall?.({ endpoint, outcome: mapped.code, seconds: ms / 1000 })
      log.warn({ upstream: endpoint, ms, err: mapped.cause ?? mapped }, 'upstream call failed')
      throw mapped
    } finally {
      cancelDeadline()
    }
  }

  /**
   * Called once the server has drained: a call still in flight only fills a cache that is being
   * thrown away, so it is aborted rather than awaited (it would hold shutdown past its grace).
   */
  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.destroy()
  }

  /** Reads at most maxBodyBytes; a larger reply is cut off at once, so memory stays flat whatever TikTok sends. */
  async #readBody(body: Dispatcher.ResponseData['body'], headers: IncomingHttpHeaders): Promise<string> {
    const { maxBodyBytes } = this.#options
    const tooLarge = () => {
      body.destroy()
      return tooLargeFailure(maxBodyBytes)
    }
    if (Number(headers['content-length']) > maxBodyBytes) throw tooLarge()
    const chunks: Buffer[] = []
    let length = 0
    for await (const chunk of body as AsyncIterable<Buffer>) {
      length += chunk.length
      if (length > maxBodyBytes) throw tooLarge()
      chunks.push(chunk)
    }
    return Buffer.concat(chunks, length).toString('utf8')
  }
}

function elapsedMs(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
