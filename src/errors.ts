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

/**
 * Whom a failure concerns, which decides who else may be given it: only the request that made it, one
 * consumer (its budget), the export jobs (theirs), the whole team (quota, credentials), TikTok's
 * health, or the replicas' shared state (Redis).
 */
export type Concern = 'request' | 'consumer' | 'exports' | 'team' | 'upstream' | 'shared-state'

/** What a failure does to an export job: wait for 00:00 UTC, try the page again later, or end the job. */
export type JobEffect = 'pause' | 'retry' | 'fail'

/** The failure policy of a kind: every path (pages, exports, jobs, readiness) asks these instead of keeping its own list. */
export interface FailureTraits {
  status: number
  title: string
  concerns: Concern
  /** An expired cached page may be served instead. */
  servesStale: boolean
  /** Counts against TikTok's health in the circuit breaker. */
  tripsBreaker: boolean
  /** The upstream client tries again at once, with backoff, within UPSTREAM_RETRIES. */
  retried: boolean
  job: JobEffect
  /** The gateway cannot serve consumers while the last token exchange ended so (/readyz answers 503). */
  unready?: true
}

type Row = Omit<FailureTraits, 'status' | 'title'>

/** A failure that is the request's own: nobody else sees it, nothing stale stands in, a job asking it ends. */
const REQUEST: Row = { concerns: 'request', servesStale: false, tripsBreaker: false, retried: false, job: 'fail' }
/** A daily budget spent: stale pages still serve, and jobs wait for 00:00 UTC. */
const budget = (concerns: Concern): Row => ({ concerns, servesStale: true, tripsBreaker: false, retried: false, job: 'pause' })
/** TikTok (or the way to it) failed: retried, counted against its health, stale pages serve, jobs try later. */
const TRANSPORT: Row = { concerns: 'upstream', servesStale: true, tripsBreaker: true, retried: true, job: 'retry' }
/** Try again later, with nothing against TikTok's health. */
const LATER = (concerns: Concern): Row => ({ concerns, servesStale: true, tripsBreaker: false, retried: false, job: 'retry' })

/** Every failure kind the gateway reports, with its error code, HTTP status, problem title and traits: the error table. */
const kinds = {
  GW_INVALID_REQUEST: [400, 'Invalid request', REQUEST],
  GW_UNAUTHORIZED: [401, 'Missing or unknown consumer key', REQUEST],
  GW_USER_PRIVATE: [403, 'TikTok user is private', REQUEST],
  GW_USER_UNAVAILABLE: [403, 'TikTok cannot return this user', REQUEST],
  GW_USER_NOT_FOUND: [404, 'TikTok user not found', REQUEST],
  GW_EXPORT_NOT_FOUND: [404, 'Export job not found', REQUEST],
  GW_METHOD_NOT_ALLOWED: [405, 'Method not allowed', REQUEST],
  GW_REQUEST_TIMEOUT: [408, 'Request not received in time', REQUEST],
  GW_BODY_TOO_LARGE: [413, 'Request body too large', REQUEST],
  GW_UNSUPPORTED_MEDIA_TYPE: [415, 'Unsupported media type', REQUEST],
  GW_RATE_LIMITED: [429, 'TikTok rate limit reached', LATER('upstream')],
  GW_DAILY_QUOTA_EXHAUSTED: [429, 'Daily Research API quota exhausted', budget('team')],
  GW_CONSUMER_BUDGET_EXHAUSTED: [429, "This consumer's daily budget is spent", budget('consumer')],
  GW_EXPORT_BUDGET_EXHAUSTED: [429, 'The daily budget of export jobs is spent', budget('exports')],
  GW_CONSUMER_RATE_LIMITED: [429, 'Too many requests from this consumer', { ...REQUEST, concerns: 'consumer', job: 'retry' }],
  GW_HEADERS_TOO_LARGE: [431, 'Request headers too large', REQUEST],
  GW_UPSTREAM_ERROR: [502, 'TikTok Research API failed', TRANSPORT],
  // Too large, an unexpected shape or status: a property of the page asked for, which asking again would only pay for again.
  GW_UPSTREAM_INVALID_REPLY: [502, 'TikTok sent a reply the gateway cannot use', { ...REQUEST, concerns: 'upstream', servesStale: true }],
  // The list kept coming back without a new account: more calls would spend quota on the same page.
  GW_UPSTREAM_NO_PROGRESS: [502, 'TikTok kept answering without a new account', { ...REQUEST, concerns: 'upstream' }],
  GW_UPSTREAM_UNAVAILABLE: [503, 'TikTok Research API unreachable', TRANSPORT],
  GW_CREDENTIALS_REJECTED: [503, "TikTok rejected the gateway's credentials", { ...LATER('team'), unready: true }],
  GW_SCOPE_NOT_AUTHORIZED: [503, "The gateway's research client is not approved for this scope", { ...LATER('team'), job: 'fail' }],
  GW_SHARED_STATE_UNAVAILABLE: [503, 'Shared state (Redis) unavailable', LATER('shared-state')],
  GW_OVERLOADED: [503, 'The gateway is overloaded', { ...REQUEST, job: 'retry' }],
  GW_UPSTREAM_TIMEOUT: [504, 'TikTok Research API timed out', TRANSPORT],
  GW_DEADLINE_EXCEEDED: [504, 'The request took longer than its deadline', { ...REQUEST, job: 'retry' }]
} as const satisfies Record<string, readonly [number, string, Row]>

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

const TRAITS = Object.fromEntries(Object.entries(kinds).map(([code, [status, title, row]]) => [code, { status, title, ...row }])) as Record<
  FailureKind,
  FailureTraits
>

/** A failure no row names (a bug, a store's own error): the request's, retried later by a job, never stood in for. */
const UNKNOWN: FailureTraits = { status: 500, title: 'Internal Server Error', ...REQUEST, job: 'retry' }

export function isFailureKind(code: string): code is FailureKind {
  return Object.hasOwn(TRAITS, code)
}

/** The row of the error table that `err` belongs to. */
export function traitsOf(err: unknown): FailureTraits {
  return isGatewayError(err) && isFailureKind(err.code) ? TRAITS[err.code] : UNKNOWN
}

/** Whether a failure is one caller's own (its budget, the export jobs'), never to be passed to another caller. */
export function isCallersOwn(err: unknown): boolean {
  const { concerns } = traitsOf(err)
  return concerns === 'consumer' || concerns === 'exports'
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
  return isFailureKind(code) ? problemKinds[code] : undefined
}
