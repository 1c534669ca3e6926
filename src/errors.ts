import createError from '@fastify/error'

/** What the upstream said about a failure, kept for support tickets, and when to try again. */
export interface FailureDetails {
  upstreamCode?: string
  logId?: string
  retryAfterSeconds?: number
  /** The consumer a failure is about (a spent consumer budget), so that it is never passed to another consumer. */
  consumer?: string
}

export type GatewayError = Error & FailureDetails & { code: string; statusCode: number }

/** Every failure kind the gateway reports: its error code, HTTP status and the problem title. */
const kinds = {
  GW_INVALID_REQUEST: [400, 'Invalid request'],
  GW_UNAUTHORIZED: [401, 'Missing or unknown consumer key'],
  GW_USER_PRIVATE: [403, 'TikTok user is private'],
  GW_USER_UNAVAILABLE: [403, 'TikTok cannot return this user'],
  GW_USER_NOT_FOUND: [404, 'TikTok user not found'],
  GW_EXPORT_NOT_FOUND: [404, 'Export job not found'],
  GW_METHOD_NOT_ALLOWED: [405, 'Method not allowed'],
  GW_REQUEST_TIMEOUT: [408, 'Request not received in time'],
  GW_BODY_TOO_LARGE: [413, 'Request body too large'],
  GW_UNSUPPORTED_MEDIA_TYPE: [415, 'Unsupported media type'],
  GW_RATE_LIMITED: [429, 'TikTok rate limit reached'],
  GW_DAILY_QUOTA_EXHAUSTED: [429, 'Daily Research API quota exhausted'],
  GW_CONSUMER_BUDGET_EXHAUSTED: [429, "This consumer's daily budget is spent"],
  GW_EXPORT_BUDGET_EXHAUSTED: [429, 'The daily budget of export jobs is spent'],
  GW_CONSUMER_RATE_LIMITED: [429, 'Too many requests from this consumer'],
  GW_HEADERS_TOO_LARGE: [431, 'Request headers too large'],
  GW_UPSTREAM_ERROR: [502, 'TikTok Research API failed'],
  GW_UPSTREAM_UNAVAILABLE: [503, 'TikTok Research API unreachable'],
  GW_CREDENTIALS_REJECTED: [503, "TikTok rejected the gateway's credentials"],
  GW_SCOPE_NOT_AUTHORIZED: [503, "The gateway's research client is not approved for this scope"],
  GW_OVERLOADED: [503, 'The gateway is overloaded'],
  GW_UPSTREAM_TIMEOUT: [504, 'TikTok Research API timed out'],
  GW_DEADLINE_EXCEEDED: [504, 'The request took longer than its deadline']
} as const satisfies Record<string, readonly [number, string]>

export type FailureKind = keyof typeof kinds

const constructors = Object.fromEntries(
  Object.entries(kinds).map(([code, [status]]) => [code, createError(code, '%s', status)])
) as Record<FailureKind, ReturnType<typeof createError>>

/** Builds the typed error of a kind; `detail` is safe to show a consumer. */
export function failure(kind: FailureKind, detail: string, details: FailureDetails & { cause?: unknown } = {}): GatewayError {
  const { cause, ...rest } = details
  const error = new constructors[kind](detail, { cause })
  return Object.assign(error, rest) as GatewayError
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof Error && typeof (err as Partial<GatewayError>).statusCode === 'number' && typeof (err as Partial<GatewayError>).code === 'string'
}

/** What a consumer reads about a kind: its RFC 9457 `type` (a URN), HTTP status and title. */
export interface ProblemKind {
  type: string
  status: number
  title: string
}

const TYPE_PREFIX = 'urn:tiktok-research-gateway:problem:'

/** Every kind as a problem, in the table's order: the error handler and the OpenAPI document read this one table. */
export const problemKinds = Object.fromEntries(
  Object.entries(kinds).map(([code, [status, title]]) => [
    code,
    { type: TYPE_PREFIX + code.slice('GW_'.length).toLowerCase().replaceAll('_', '-'), status, title }
  ])
) as Record<FailureKind, ProblemKind>

export function problemKindOf(code: string): ProblemKind | undefined {
  return Object.hasOwn(problemKinds, code) ? problemKinds[code as FailureKind] : undefined
}
