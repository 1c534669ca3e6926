import type { IncomingHttpHeaders } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type { Dispatcher } from 'undici'
import type { UpstreamConfig } from '../config.js'
import { failure, isGatewayError, type FailureDetails, type GatewayError } from '../errors.js'
import { secondsUntilNextUtcDay } from '../utc-day.js'
import { CircuitBreaker, type BreakerState } from './circuit-breaker.js'
import { HttpClient, type UpstreamCall, type UpstreamReply } from './http-client.js'
import { TokenManager, type IssuedToken } from './token-manager.js'
import { USER_INFO_FIELDS, wire, type ApiError, type FollowersData, type FollowingData, type ListRequest, type UserInfoData } from './wire.js'

export interface ResearchApiOptions extends UpstreamConfig {
  logger: FastifyBaseLogger
  dispatcher?: Dispatcher
  now: () => number
  onCall?: (call: UpstreamCall) => void
}

export interface CallContext {
  log: FastifyBaseLogger
  /** Runs just before each research attempt is sent, retries included; throwing stops the call (quota). */
  charge: () => Promise<void>
}

interface Exchange {
  endpoint: string
  path: string
  contentType: string
  body: string
  log: FastifyBaseLogger
  /** Research calls carry the client access token and are charged; the token exchange is neither. */
  research?: { charge: () => Promise<void> }
}

/** When TikTok rate-limits without saying for how long. */
const DEFAULT_RATE_LIMIT_RETRY_SECONDS = 60
/** Retry-After is trusted within these bounds (seconds); beyond them it is clamped. */
const RETRY_AFTER_BOUNDS = [1, 86_400] as const
const TRANSPORT_FAILURES = new Set(['GW_UPSTREAM_UNAVAILABLE', 'GW_UPSTREAM_TIMEOUT', 'GW_UPSTREAM_ERROR'])
const BACKOFF_BASE_MS = 100
const BACKOFF_CAP_MS = 2000

/**
 * The TikTok Research API as the gateway uses it. Every decision about an upstream call is made
 * here, in one loop: the token (and its renewal when TikTok rejects it), the quota charge of each
 * attempt, jittered backoff for network errors and 5xx, one wait for a short Retry-After, and the
 * circuit breaker. The transport below makes single attempts.
 */
export class ResearchApi {
  readonly #http: HttpClient
  readonly #tokens: TokenManager
  readonly #breaker: CircuitBreaker
  readonly #options: ResearchApiOptions
  #credentialsRejected = false

  constructor(options: ResearchApiOptions) {
    this.#options = options
    this.#http = new HttpClient(options)
    this.#tokens = new TokenManager(() => this.#exchangeToken(), options.now)
    this.#breaker = new CircuitBreaker(options.breakerFailureThreshold, options.breakerCooldownSeconds * 1000, options.now)
  }

  /** True after TikTok refused the client credentials, until an exchange succeeds again. */
  get credentialsRejected(): boolean {
    return this.#credentialsRejected
  }

  get breakerState(): BreakerState {
    return this.#breaker.state
  }

  queryUserFollowers(query: ListRequest, context: CallContext): Promise<FollowersData> {
    return this.#research('followers', '/v2/research/user/followers/', query, wire.followersData, context, query.username)
  }

  queryUserFollowing(query: ListRequest, context: CallContext): Promise<FollowingData> {
    return this.#research('following', '/v2/research/user/following/', query, wire.followingData, context, query.username)
  }

  /** Every field of the user's profile. */
  queryUserInfo(username: string, context: CallContext): Promise<UserInfoData> {
    return this.#research('info', `/v2/research/user/info/?fields=${USER_INFO_FIELDS.join(',')}`, { username }, wire.userInfoData, context, username)
  }

  async close(): Promise<void> {
    await this.#http.close()
  }

  /** A research call: its data when TikTok answers ok in the expected shape, else the failure a consumer sees. */
  async #research<T>(
    endpoint: string,
    path: string,
    query: object,
    shape: { Check(value: unknown): value is T },
    { log, charge }: CallContext,
    username: string
  ): Promise<T> {
    this.#breaker.enter()
    let reply: UpstreamReply
    try {
      reply = await this.#exchange({ endpoint, path, contentType: 'application/json', body: JSON.stringify(query), log, research: { charge } })
    } catch (err) {
      // Only TikTok's failures count against it; a quota refusal or rejected credentials say nothing about its health.
      if (isGatewayError(err) && TRANSPORT_FAILURES.has(err.code)) this.#breaker.failed()
      else this.#breaker.abandoned()
      throw err
    }
    if (reply.status >= 500) this.#breaker.failed()
    else this.#breaker.succeeded()
    const error = apiErrorOf(reply)
    if (reply.status === 200 && error?.code === 'ok') {
      const { data } = reply.json as { data?: unknown }
      if (shape.Check(data)) return data
      throw failure('GW_UPSTREAM_ERROR', `The TikTok Research API sent ${endpoint} in an unexpected shape`, { logId: error.log_id })
    }
    if (error?.code === 'invalid_params') throw invalidParamsFailure(error, username)
    throw upstreamFailure(reply, error, this.#options.now())
  }

  /**
   * Sends until there is an answer to give: retries network errors and 5xx with backoff, renews a
   * rejected token once, waits out one short Retry-After. Returns the last reply; throws the last
   * network failure or a quota refusal.
   */
  async #exchange(exchange: Exchange): Promise<UpstreamReply> {
    const { retries, retryAfterMaxWaitSeconds } = this.#options
    const { research, log } = exchange
    let renewed = false
    let waited = false
    // Only network errors and 5xx use up retries; a renewed token or a waited-out Retry-After does not.
    let failures = 0
    for (;;) {
      const token = research && (await this.#tokens.get())
      const headers: Record<string, string> = { 'content-type': exchange.contentType }
      if (token !== undefined) headers.authorization = `Bearer ${token}`
      await research?.charge()
      let reply: UpstreamReply
      try {
        reply = await this.#http.send({ ...exchange, headers, log })
      } catch (err) {
        if (failures >= retries) throw err
        await backoff(failures++)
        continue
      }
      if (reply.status >= 500 && failures < retries) {
        await backoff(failures++)
        continue
      }
      const code = apiErrorOf(reply)?.code
      // A token can be revoked or expire early: exchange once and retry once.
      if (token !== undefined && code === 'access_token_invalid' && !renewed) {
        renewed = true
        this.#tokens.invalidate(token)
        continue
      }
      // A short rate-limit pause is cheaper waited out here than passed on to every consumer.
      const retryAfter = retryAfterSeconds(reply.headers)
      if (isRateLimited(reply) && retryAfter !== undefined && retryAfter <= retryAfterMaxWaitSeconds && !waited) {
        waited = true
        log.info({ retryAfter }, 'TikTok rate-limited the gateway; waiting before one retry')
        await sleep(retryAfter * 1000)
        continue
      }
      return reply
    }
  }

  async #exchangeToken(): Promise<IssuedToken> {
    const { clientKey, clientSecret, logger } = this.#options
    const form = new URLSearchParams({ client_key: clientKey, client_secret: clientSecret, grant_type: 'client_credentials' })
    const reply = await this.#exchange({
      endpoint: 'token',
      path: '/v2/oauth/token/',
      contentType: 'application/x-www-form-urlencoded',
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
    throw upstreamFailure(reply, undefined, this.#options.now())
  }
}

/** Full jitter. The timer stays ref'd: a caller is awaiting it, and it is bounded by the cap. */
function backoff(attempt: number): Promise<void> {
  return sleep(Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt))
}

/** Error replies may carry `"data": {}`, so the envelope's error half is checked on its own. */
function apiErrorOf(reply: UpstreamReply): ApiError | undefined {
  const error = (reply.json as { error?: unknown } | undefined)?.error
  return wire.apiError.Check(error) ? error : undefined
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
  if (isRateLimited(reply)) {
    const [min, max] = RETRY_AFTER_BOUNDS
    const seconds = retryAfterSeconds(reply.headers) ?? DEFAULT_RATE_LIMIT_RETRY_SECONDS
    return failure('GW_RATE_LIMITED', 'TikTok is rate-limiting the gateway; retry after the indicated delay', {
      ...details,
      retryAfterSeconds: Math.min(max, Math.max(min, seconds))
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
    return failure('GW_USER_PRIVATE', `"${username}" is a private account; TikTok does not return its data`, details)
  }
  if (/cannot return this user/i.test(message)) {
    return failure('GW_USER_UNAVAILABLE', `TikTok's Research API cannot return information about "${username}"`, details)
  }
  if (/invalid count or cursor/i.test(message)) {
    return failure('GW_UPSTREAM_ERROR', 'TikTok answered "Invalid count or cursor", a known transient fault of the Research API; retry the request', details)
  }
  return failure('GW_INVALID_REQUEST', `TikTok rejected the request: ${message}`, details)
}

function isRateLimited(reply: UpstreamReply): boolean {
  const code = apiErrorOf(reply)?.code
  return code === 'rate_limit_exceeded' || (reply.status === 429 && code !== 'daily_quota_limit_exceeded')
}

/** Only delta-seconds in plain digits; anything else (`1e+23`, a date, garbage) is as if absent. */
function retryAfterSeconds(headers: IncomingHttpHeaders): number | undefined {
  const value = headers['retry-after']
  return typeof value === 'string' && /^\d{1,9}$/.test(value.trim()) ? Number(value) : undefined
}
