import type { FastifyBaseLogger } from 'fastify'
import type { Dispatcher } from 'undici'
import type { Clock } from '../clock.js'
import type { UpstreamConfig } from '../config.js'
import { isGatewayError, traitsOf, type GatewayError } from '../errors.js'
import { CircuitBreaker, type BreakerState } from './circuit-breaker.js'
import { apiErrorOf, networkFailure, researchFailure, retryAfterSeconds, tokenFailure, type Scrub, type UpstreamReply } from './failures.js'
import { HttpClient, type UpstreamCall } from './http-client.js'
import { TokenManager, type IssuedToken } from './token-manager.js'
import { USER_INFO_FIELDS, wire, type FollowersData, type FollowingData, type ListRequest, type UserInfoData } from './wire.js'

export interface ResearchApiOptions extends UpstreamConfig {
  logger: FastifyBaseLogger
  dispatcher?: Dispatcher
  clock: Clock
  onCall?: (call: UpstreamCall) => void
  /** How soon a failed token exchange is tried again in the background, so that readiness recovers without consumer traffic. */
  tokenRetryMs: number
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

const BACKOFF_BASE_MS = 100
const BACKOFF_CAP_MS = 2000

/**
 * The TikTok Research API as the gateway uses it. Every decision about an upstream call is made
 * here, in one loop that asks each failure's row of the error table (failures.ts maps replies and
 * network errors to rows): the token (and its renewal when TikTok rejects it), the quota charge of
 * each attempt, jittered backoff for what is retried, one wait for a short Retry-After, and the
 * circuit breaker. The transport below makes single attempts.
 */
export class ResearchApi {
  readonly #http: HttpClient
  readonly #tokens: TokenManager
  readonly #breaker: CircuitBreaker
  readonly #options: ResearchApiOptions
  /** The client secret and the token in use, taken out of TikTok's text. */
  readonly #scrub: Scrub = (text) => {
    const secrets = [this.#options.clientSecret, this.#tokens.current].filter((secret): secret is string => secret !== undefined && secret !== '')
    return secrets.reduce((scrubbed, secret) => scrubbed.replaceAll(secret, '[redacted]'), text)
  }
  #tokenFailure: GatewayError | undefined
  #cancelTokenRetry: (() => void) | undefined
  #closed = false

  constructor(options: ResearchApiOptions) {
    this.#options = options
    this.#http = new HttpClient(options)
    this.#tokens = new TokenManager(() => this.#exchangeToken(), options.clock.now)
    this.#breaker = new CircuitBreaker(options.breakerFailureThreshold, options.breakerCooldownSeconds * 1000, options.clock.now)
  }

  /** How the last token exchange failed, until one succeeds: readiness asks its row. */
  get tokenFailure(): GatewayError | undefined {
    return this.#tokenFailure
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
    this.#closed = true
    this.#cancelTokenRetry?.()
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
    const answer = (reply: UpstreamReply): T | GatewayError => {
      const data = (reply.json as { data?: unknown } | undefined)?.data
      return reply.status === 200 && apiErrorOf(reply)?.code === 'ok' && shape.Check(data)
        ? data
        : researchFailure(reply, endpoint, username, this.#options.clock.now(), this.#scrub)
    }
    try {
      const data = await this.#exchange({ endpoint, path, contentType: 'application/json', body: JSON.stringify(query), log, research: { charge } }, answer)
      this.#breaker.succeeded()
      return data
    } catch (err) {
      const { tripsBreaker, concerns } = traitsOf(err)
      if (tripsBreaker) this.#breaker.failed()
      // TikTok answered, so it is up, whatever it said; a refusal of the gateway's own (quota, credentials, Redis) says nothing of it.
      else if (concerns === 'upstream' || concerns === 'request') this.#breaker.succeeded()
      else this.#breaker.abandoned()
      throw err
    }
  }

  /**
   * Sends until there is an answer to give: retries what its row says is retried, with backoff;
   * renews a rejected token once; waits out one short Retry-After. Throws the last failure.
   */
  async #exchange<T>(exchange: Exchange, answer: (reply: UpstreamReply) => T | GatewayError): Promise<T> {
    const { retries, retryAfterMaxWaitSeconds } = this.#options
    const { research, log } = exchange
    let renewed = false
    let waited = false
    // Only retried failures use up retries; a renewed token or a waited-out Retry-After does not.
    let failures = 0
    for (;;) {
      const token = research && (await this.#tokens.get())
      const headers: Record<string, string> = { 'content-type': exchange.contentType }
      if (token !== undefined) headers.authorization = `Bearer ${token}`
      await research?.charge()
      const reply = await this.#http.send({ ...exchange, headers, log }).catch((err: unknown) => networkFailure(err))
      const result = isGatewayError(reply) ? reply : answer(reply)
      if (!isGatewayError(result)) return result
      if (traitsOf(result).retried && failures < retries) {
        await this.#backoff(failures++)
        continue
      }
      // A token can be revoked or expire early: exchange once and retry once.
      if (token !== undefined && result.upstreamCode === 'access_token_invalid' && !renewed) {
        renewed = true
        this.#tokens.invalidate(token)
        continue
      }
      // A short rate-limit pause is cheaper waited out here than passed on to every consumer.
      const retryAfter = isGatewayError(reply) ? undefined : retryAfterSeconds(reply.headers)
      if (result.code === 'GW_RATE_LIMITED' && retryAfter !== undefined && retryAfter <= retryAfterMaxWaitSeconds && !waited) {
        waited = true
        log.info({ retryAfter }, 'TikTok rate-limited the gateway; waiting before one retry')
        await this.#options.clock.sleep(retryAfter * 1000)
        continue
      }
      throw result
    }
  }

  async #exchangeToken(): Promise<IssuedToken> {
    const { clientKey, clientSecret, logger } = this.#options
    const form = new URLSearchParams({ client_key: clientKey, client_secret: clientSecret, grant_type: 'client_credentials' })
    const answer = (reply: UpstreamReply): IssuedToken | GatewayError =>
      reply.status === 200 && wire.tokenResponse.Check(reply.json)
        ? { accessToken: reply.json.access_token, expiresInSeconds: reply.json.expires_in }
        : tokenFailure(reply, this.#scrub)
    try {
      const issued = await this.#exchange({ endpoint: 'token', path: '/v2/oauth/token/', contentType: 'application/x-www-form-urlencoded', body: form.toString(), log: logger }, answer)
      this.#tokenFailure = undefined
      logger.info({ expiresIn: issued.expiresInSeconds }, 'obtained a TikTok client access token')
      return issued
    } catch (err) {
      this.#tokenFailure = isGatewayError(err) ? err : undefined
      this.#retryTokenLater()
      throw err
    }
  }

  /** One background exchange after a failed one, so that readiness recovers while no consumer asks. */
  #retryTokenLater(): void {
    if (this.#closed || this.#cancelTokenRetry !== undefined) return
    this.#cancelTokenRetry = this.#options.clock.setTimeout(() => {
      this.#cancelTokenRetry = undefined
      // A failure schedules the next try.
      this.#tokens.get().catch(() => {})
    }, this.#options.tokenRetryMs)
  }

  /** Full jitter, bounded by the cap. */
  #backoff(attempt: number): Promise<void> {
    return this.#options.clock.sleep(Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt))
  }
}
