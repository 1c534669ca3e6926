import type { IncomingHttpHeaders } from 'node:http'
import { errors } from 'undici'
import { failure, isGatewayError, type FailureDetails, type GatewayError } from '../errors.js'
import { secondsUntilNextUtcDay } from '../utc-day.js'
import { wire, type ApiError } from './wire.js'

/**
 * Every way TikTok, or the way to it, can fail, mapped once to a row of the error table
 * (src/errors.ts); whether to retry, trip the breaker or serve stale is then the row's to say.
 */

/** What came back from one attempt. */
export interface UpstreamReply {
  status: number
  headers: IncomingHttpHeaders
  /** The parsed JSON body, or undefined when the body was not JSON (a 504 from TikTok's edge is HTML). */
  json: unknown
}

/** When TikTok rate-limits or fails the token exchange without saying for how long. */
const DEFAULT_RATE_LIMIT_RETRY_SECONDS = 60
const DEFAULT_OUTAGE_RETRY_SECONDS = 30
/** Retry-After is trusted within these bounds (seconds); beyond them it is clamped. */
const RETRY_AFTER_BOUNDS = [1, 86_400] as const

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'])

/** undici failures: cannot connect -> 503, too slow -> 504, anything else mid-exchange -> 502. */
export function networkFailure(err: unknown): GatewayError {
  if (isGatewayError(err)) return err
  const code = (err as { code?: string }).code ?? ''
  if (err instanceof errors.ConnectTimeoutError || UNREACHABLE.has(code)) {
    return failure('GW_UPSTREAM_UNAVAILABLE', 'Could not connect to the TikTok Research API', { cause: err })
  }
  const name = (err as { name?: string }).name
  if (name === 'TimeoutError' || err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError) {
    return failure('GW_UPSTREAM_TIMEOUT', 'The TikTok Research API did not answer in time', { cause: err })
  }
  return failure('GW_UPSTREAM_ERROR', 'The connection to the TikTok Research API failed mid-request', { cause: err })
}

export function tooLargeFailure(maxBodyBytes: number): GatewayError {
  return failure('GW_UPSTREAM_INVALID_REPLY', `The TikTok Research API sent a reply larger than ${maxBodyBytes} bytes (UPSTREAM_MAX_BODY_BYTES)`)
}

/** Error replies may carry `"data": {}`, so the envelope's error half is checked on its own. */
export function apiErrorOf(reply: UpstreamReply): ApiError | undefined {
  const error = (reply.json as { error?: unknown } | undefined)?.error
  return wire.apiError.Check(error) ? error : undefined
}

/** Takes the gateway's secrets out of text TikTok sent, before it reaches a consumer or a log line. */
export type Scrub = (text: string) => string

/** A research reply that carries no usable answer, as the failure a consumer sees. */
export function researchFailure(reply: UpstreamReply, endpoint: string, username: string, now: number, scrub: Scrub): GatewayError {
  // Told apart by what TikTok sent; what goes into problems and logs is scrubbed: a buggy or hostile
  // upstream could quote the token or the secret back.
  const error = apiErrorOf(reply)
  const details: FailureDetails = { upstreamCode: error && scrub(error.code), logId: error?.log_id && scrub(error.log_id) }
  switch (error?.code) {
    case 'ok':
      return failure('GW_UPSTREAM_INVALID_REPLY', `The TikTok Research API sent ${endpoint} in an unexpected shape`, details)
    case 'invalid_params':
      return invalidParamsFailure(error, username, details, scrub)
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
      return failure('GW_CREDENTIALS_REJECTED', 'TikTok rejected the access token', details)
  }
  if (error?.code === 'rate_limit_exceeded' || reply.status === 429) return rateLimited(reply, details)
  return statusFailure(reply, details, details.upstreamCode === undefined ? '' : ` (${details.upstreamCode})`)
}

/** A token exchange that issued no token: a limit or an outage is TikTok's, only a refusal is the credentials'. */
export function tokenFailure(reply: UpstreamReply, scrub: Scrub): GatewayError {
  if (reply.status === 429) return rateLimited(reply, {})
  if (reply.status >= 500) {
    return failure('GW_UPSTREAM_UNAVAILABLE', `TikTok's token endpoint failed with ${reply.status}`, {
      retryAfterSeconds: retryAfter(reply.headers, DEFAULT_OUTAGE_RETRY_SECONDS)
    })
  }
  if (wire.tokenError.Check(reply.json)) {
    return failure(
      'GW_CREDENTIALS_REJECTED',
      "TikTok refused the gateway's client credentials; an operator must check TIKTOK_CLIENT_KEY and TIKTOK_CLIENT_SECRET",
      { upstreamCode: scrub(reply.json.error), logId: reply.json.log_id && scrub(reply.json.log_id) }
    )
  }
  return statusFailure(reply, {}, '')
}

/** Only delta-seconds in plain digits; anything else (`1e+23`, a date, garbage) is as if absent. */
export function retryAfterSeconds(headers: IncomingHttpHeaders): number | undefined {
  const value = headers['retry-after']
  return typeof value === 'string' && /^\d{1,9}$/.test(value.trim()) ? Number(value) : undefined
}

function retryAfter(headers: IncomingHttpHeaders, fallback: number): number {
  const [min, max] = RETRY_AFTER_BOUNDS
  return Math.min(max, Math.max(min, retryAfterSeconds(headers) ?? fallback))
}

function rateLimited(reply: UpstreamReply, details: FailureDetails): GatewayError {
  return failure('GW_RATE_LIMITED', 'TikTok is rate-limiting the gateway; retry after the indicated delay', {
    ...details,
    retryAfterSeconds: retryAfter(reply.headers, DEFAULT_RATE_LIMIT_RETRY_SECONDS)
  })
}

function statusFailure(reply: UpstreamReply, details: FailureDetails, code: string): GatewayError {
  if (reply.status === 504) return failure('GW_UPSTREAM_TIMEOUT', "TikTok's edge timed out (504)", details)
  if (reply.status >= 500) return failure('GW_UPSTREAM_ERROR', `The TikTok Research API failed with ${reply.status}${code}`, details)
  return failure('GW_UPSTREAM_INVALID_REPLY', `The TikTok Research API sent an unexpected ${reply.status} reply${code}`, details)
}

/** TikTok reports unknown, private and unreturnable users as invalid_params, told apart by the message. */
function invalidParamsFailure({ message }: ApiError, username: string, details: FailureDetails, scrub: Scrub): GatewayError {
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
  return failure('GW_INVALID_REQUEST', `TikTok rejected the request: ${scrub(message)}`, details)
}
