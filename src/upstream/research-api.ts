import type { IncomingHttpHeaders } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type { Dispatcher } from 'undici'
import type { UpstreamConfig } from '../config.js'
import { failure, type FailureDetails, type GatewayError } from '../errors.js'
import { secondsUntilNextUtcDay } from '../utc-day.js'
import type { BreakerState } from './circuit-breaker.js'
import { HttpClient, type UpstreamCall, type UpstreamReply } from './http-client.js'
import { TokenManager, type IssuedToken } from './token-manager.js'
import { wire, type ApiError, type FollowersData, type FollowersRequest } from './wire.js'

export interface ResearchApiOptions extends UpstreamConfig {
  logger: FastifyBaseLogger
  dispatcher?: Dispatcher
  now: () => number
  onCall?: (call: UpstreamCall) => void
}

export interface CallContext {
  log?: FastifyBaseLogger
  /** Runs before every research call is sent, retries included (quota reservation). */
  beforeAttempt?: () => Promise<void>
}

/** When TikTok rate-limits without saying for how long. */
const DEFAULT_RATE_LIMIT_RETRY_SECONDS = 60

/** The TikTok Research API as the gateway uses it: client-credential tokens and Query User Followers. */
export class ResearchApi {
  readonly #http: HttpClient
  readonly #tokens: TokenManager
  readonly #options: ResearchApiOptions
  readonly #now: () => number
  #credentialsRejected = false

  constructor(options: ResearchApiOptions) {
    this.#options = options
    this.#now = options.now
    this.#http = new HttpClient(options)
    this.#tokens = new TokenManager(() => this.#exchangeToken(), this.#now)
  }

  /** True after TikTok refused the client credentials, until an exchange succeeds again. */
  get credentialsRejected(): boolean {
    return this.#credentialsRejected
  }

  get breakerState(): BreakerState {
    return this.#http.breaker.state
  }

  async queryUserFollowers(query: FollowersRequest, { log = this.#options.logger, beforeAttempt }: CallContext = {}): Promise<FollowersData> {
    const body = JSON.stringify(query)
    let renewed = false
    let waited = false
    for (;;) {
      const token = await this.#tokens.get()
      const reply = await this.#http.post({
        endpoint: 'followers',
        path: '/v2/research/user/followers/',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body,
        log,
        beforeAttempt
      })
      // Error replies may carry `"data": {}`, so the envelope's two halves are checked apart.
      const json = reply.json as { data?: unknown; error?: unknown } | undefined
      const error = wire.apiError.Check(json?.error) ? json?.error : undefined
      if (reply.status === 200 && error?.code === 'ok') {
        if (wire.followersData.Check(json?.data)) return json.data
        throw failure('GW_UPSTREAM_ERROR', 'The TikTok Research API sent followers in an unexpected shape', { logId: error.log_id })
      }
      // A token can be revoked or expire early: exchange once and retry once.
      if (error?.code === 'access_token_invalid' && !renewed) {
        renewed = true
        this.#tokens.invalidate(token)
        continue
      }
      // A short rate-limit pause is cheaper waited out here than passed on to every consumer.
      const retryAfter = retryAfterHeader(reply.headers)
      if (isRateLimited(reply, error) && retryAfter !== undefined && retryAfter <= this.#options.retryAfterMaxWaitSeconds && !waited) {
        waited = true
        log.info({ retryAfter }, 'TikTok rate-limited the gateway; waiting before one retry')
        await sleep(retryAfter * 1000)
        continue
      }
      if (error?.code === 'invalid_params') throw invalidParamsFailure(error, query.username)
      throw upstreamFailure(reply, error, this.#now())
    }
  }

  async close(): Promise<void> {
    await this.#http.close()
  }

  async #exchangeToken(): Promise<IssuedToken> {
    const { clientKey, clientSecret, logger } = this.#options
    const form = new URLSearchParams({ client_key: clientKey, client_secret: clientSecret, grant_type: 'client_credentials' })
    const reply = await this.#http.post({
      endpoint: 'token',
      path: '/v2/oauth/token/',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
      log: logger
    })
    if (reply.status === 200 && wire.tokenResponse.Check(reply.json)) {
      this.#credentialsRejected = false
      logger.info({ expiresIn: reply.json.expires_in }, 'obtained a TikTok client access token')
      return { accessToken: reply.json.access_token, expiresInSeconds: reply.json.expires_in }
    }
    if (reply.status < 500 && wire.tokenError.Check(reply.json)) {
      this.#credentialsRejected = true
      throw failure(
        'GW_CREDENTIALS_REJECTED',
        'TikTok refused the gateway\'s client credentials; an operator must check TIKTOK_CLIENT_KEY and TIKTOK_CLIENT_SECRET',
        { upstreamCode: reply.json.error, logId: reply.json.log_id }
      )
    }
    throw upstreamFailure(reply, undefined, this.#now())
  }
}

/** Maps a reply that carries no usable answer (after retries) to the failure a consumer sees. */
function upstreamFailure(reply: UpstreamReply, error: ApiError | undefined, now: number): GatewayError {
  const details: FailureDetails = { upstreamCode: error?.code, logId: error?.log_id }
  switch (error?.code) {
    case 'daily_quota_limit_exceeded':
      return failure('GW_DAILY_QUOTA_EXHAUSTED', "The team's daily Research API quota is spent; it resets at 00:00 UTC", {
        ...details,
        retryAfterSeconds: secondsUntilNextUtcDay(now)
      })
    case 'scope_not_authorized':
      return failure(
        'GW_SCOPE_NOT_AUTHORIZED',
        "TikTok has not approved the gateway's research client for this data; an operator must request the scope",
        details
      )
    case 'access_token_invalid':
      return failure('GW_CREDENTIALS_REJECTED', 'TikTok rejected a freshly issued access token', details)
  }
  if (isRateLimited(reply, error)) {
    return failure('GW_RATE_LIMITED', 'TikTok is rate-limiting the gateway; retry after the indicated delay', {
      ...details,
      retryAfterSeconds: retryAfterHeader(reply.headers) ?? DEFAULT_RATE_LIMIT_RETRY_SECONDS
    })
  }
  if (reply.status === 504) {
    return failure('GW_UPSTREAM_TIMEOUT', "TikTok's edge timed out (504) on every attempt", details)
  }
  const what = reply.status >= 500 ? `failed with ${reply.status}` : `sent an unexpected ${reply.status} reply`
  return failure('GW_UPSTREAM_ERROR', `The TikTok Research API ${what}${error ? ` (${error.code})` : ''}`, details)
}

/** TikTok reports unknown, private and unreturnable users as invalid_params, told apart by the message. */
function invalidParamsFailure({ code, message, log_id: logId }: ApiError, username: string): GatewayError {
  const details: FailureDetails = { upstreamCode: code, logId }
  if (/cannot find the user/i.test(message)) {
    return failure('GW_USER_NOT_FOUND', `TikTok has no user "${username}"`, details)
  }
  if (/is private/i.test(message)) {
    return failure('GW_USER_PRIVATE', `"${username}" is a private account; TikTok does not return its followers`, details)
  }
  if (/cannot return this user/i.test(message)) {
    return failure('GW_USER_UNAVAILABLE', `TikTok's Research API cannot return information about "${username}"`, details)
  }
  if (/invalid count or cursor/i.test(message)) {
    return failure('GW_UPSTREAM_ERROR', 'TikTok answered "Invalid count or cursor", a known transient fault of the Research API; retry the request', details)
  }
  return failure('GW_INVALID_REQUEST', `TikTok rejected the request: ${message}`, details)
}

function isRateLimited(reply: UpstreamReply, error: ApiError | undefined): boolean {
  return error?.code === 'rate_limit_exceeded' || (reply.status === 429 && error?.code !== 'daily_quota_limit_exceeded')
}

function retryAfterHeader(headers: IncomingHttpHeaders): number | undefined {
  const value = Number(headers['retry-after'])
  return Number.isInteger(value) && value >= 0 ? value : undefined
}
