import { Type, type Static } from 'typebox'
import { problemKinds, type FailureKind } from '../errors.js'
import { RATE_LIMIT_HEADERS, REQUEST_ID_HEADER, RETRY_AFTER_HEADER, WWW_AUTHENTICATE_HEADER } from './headers.js'
import { named, ref } from './named.js'

const KINDS = Object.keys(problemKinds) as FailureKind[]

/** Kinds of a request body that Fastify refuses before validating it: only a route taking a body answers with them. */
export const BODY_PROBLEMS: readonly FailureKind[] = ['GW_BODY_TOO_LARGE', 'GW_UNSUPPORTED_MEDIA_TYPE']

/** RFC 9457 problem details, with the upstream's code and log_id when TikTok caused the failure. */
export const Problem = named(
  'Problem',
  Type.Object({
    type: Type.String({
      description:
        'Identifies the kind of problem: one of the URNs listed in the API description (each status documents the ones it can carry), ' +
        'or `about:blank` for a plain HTTP error such as an unknown route.',
      examples: KINDS.map((kind) => problemKinds[kind].type)
    }),
    title: Type.String({ description: 'The same for every problem of a type' }),
    status: Type.Integer({ description: 'The HTTP status' }),
    detail: Type.String({ description: 'What happened to this request' }),
    instance: Type.Optional(Type.String({ description: 'The request path.' })),
    request_id: Type.Optional(Type.String({ description: 'Quote it when reporting the problem.' })),
    code: Type.Optional(Type.String({ description: "TikTok's error code, when TikTok caused the failure." })),
    log_id: Type.Optional(Type.String({ description: "TikTok's log_id, for a support ticket with TikTok." }))
  })
)
export type Problem = Static<typeof Problem>

/** What an example of each kind says; a kind added to src/errors.ts fails to compile until it has one. */
const EXAMPLES: Record<FailureKind, Pick<Problem, 'detail' | 'code'>> = {
  GW_INVALID_REQUEST: { detail: 'querystring.max_count must be <= 100' },
  GW_UNAUTHORIZED: { detail: 'Send your consumer key as "Authorization: Bearer <key>" or "X-API-Key: <key>"' },
  GW_USER_PRIVATE: { detail: '"private_account" is a private account; TikTok does not return its data', code: 'invalid_params' },
  GW_USER_UNAVAILABLE: { detail: 'TikTok\'s Research API cannot return information about "hidden_account"', code: 'invalid_params' },
  GW_USER_NOT_FOUND: { detail: 'TikTok has no user "nobody_here"', code: 'invalid_params' },
  GW_EXPORT_NOT_FOUND: { detail: 'No export job "c0a8e0f2-2f4b-4a55-9c43-2b0f0b7d3c11" of yours' },
  GW_METHOD_NOT_ALLOWED: { detail: 'POST is not a method of /v1/users/tiktok/followers; it has GET, HEAD' },
  GW_REQUEST_TIMEOUT: { detail: 'The request did not arrive in time' },
  GW_BODY_TOO_LARGE: { detail: 'Request body is too large' },
  GW_UNSUPPORTED_MEDIA_TYPE: { detail: 'Send the body as application/json' },
  GW_RATE_LIMITED: { detail: 'TikTok is rate-limiting the gateway; retry after the indicated delay', code: 'rate_limit_exceeded' },
  GW_DAILY_QUOTA_EXHAUSTED: { detail: "The team's daily Research API budget is spent; it resets at 00:00 UTC" },
  GW_CONSUMER_BUDGET_EXHAUSTED: {
    detail: '"notebooks" has made its 5000 upstream calls for today; cached pages are still served, and the budget resets at 00:00 UTC'
  },
  GW_EXPORT_BUDGET_EXHAUSTED: { detail: 'Export jobs have made their 10000 upstream calls for today (EXPORT_DAILY_BUDGET); it resets at 00:00 UTC' },
  GW_CONSUMER_RATE_LIMITED: { detail: '"notebooks" sent more than 600 requests a minute; retry in 42 s' },
  GW_HEADERS_TOO_LARGE: { detail: 'The request headers are larger than the gateway takes' },
  GW_UPSTREAM_ERROR: { detail: 'The TikTok Research API failed with 500 (internal_error)', code: 'internal_error' },
  GW_UPSTREAM_INVALID_REPLY: { detail: 'The TikTok Research API sent a reply larger than 1048576 bytes (UPSTREAM_MAX_BODY_BYTES)' },
  GW_UPSTREAM_NO_PROGRESS: { detail: 'TikTok answered 3 pages in a row without a new account at cursor 1767225597; the export job stops there' },
  GW_UPSTREAM_UNAVAILABLE: { detail: 'Could not connect to the TikTok Research API' },
  GW_CREDENTIALS_REJECTED: {
    detail: "TikTok refused the gateway's client credentials; an operator must check TIKTOK_CLIENT_KEY and TIKTOK_CLIENT_SECRET",
    code: 'invalid_client'
  },
  GW_SCOPE_NOT_AUTHORIZED: {
    detail: "TikTok has not approved the gateway's research client for this data; an operator must request the scope",
    code: 'scope_not_authorized'
  },
  GW_SHARED_STATE_UNAVAILABLE: { detail: 'The shared state of the replicas (Redis) is unavailable; retry in 5 s' },
  GW_OVERLOADED: { detail: 'The gateway is shedding load (eventLoopDelay: 1200); retry in 10 s' },
  GW_UPSTREAM_TIMEOUT: { detail: 'The TikTok Research API did not answer in time' },
  GW_DEADLINE_EXCEEDED: { detail: "No answer within the gateway's 30000 ms deadline; retry shortly" }
}

/** Kinds of a request no route takes (Node's parser or the router refuses it): listed in the API description, on no route. */
const ROUTELESS_PROBLEMS: readonly FailureKind[] = ['GW_METHOD_NOT_ALLOWED', 'GW_REQUEST_TIMEOUT', 'GW_HEADERS_TOO_LARGE']

/** Kinds a page route never answers with: the export jobs' own, a request body's and those of no route. */
const NOT_ON_PAGES: ReadonlySet<FailureKind> = new Set([
  'GW_EXPORT_NOT_FOUND',
  'GW_EXPORT_BUDGET_EXHAUSTED',
  'GW_UPSTREAM_NO_PROGRESS',
  ...BODY_PROBLEMS,
  ...ROUTELESS_PROBLEMS
])

/** Every kind a route reaching TikTok can answer with. */
export const ALL_PROBLEMS: readonly FailureKind[] = KINDS.filter((kind) => !NOT_ON_PAGES.has(kind))

/**
 * Kinds the gateway answers before the per-consumer rate limit counts the request (authentication, load shedding,
 * the body parser, validation), so without x-ratelimit-* headers.
 */
const BEFORE_RATE_LIMIT: ReadonlySet<FailureKind> = new Set(['GW_INVALID_REQUEST', 'GW_UNAUTHORIZED', 'GW_OVERLOADED', ...BODY_PROBLEMS])

export interface ProblemResponseOptions {
  /** The `instance` of the examples: the path of an example request. */
  instance: string
  /** The route counts requests against the per-consumer rate limit, whose headers then come with the answers after the count. */
  rateLimited?: boolean
}

/**
 * The documented problem responses of a route that can fail with `kinds`: one response per status, with one
 * example per problem type, built from the table in src/errors.ts so that the document cannot drift from it.
 */
export function problemResponses(kinds: readonly FailureKind[], { instance, rateLimited = false }: ProblemResponseOptions) {
  // A route that calls TikTok also answers 400 after the count: when TikTok refuses a request the gateway let through.
  const callsTikTok = kinds.includes('GW_UPSTREAM_ERROR')
  const counted = (kind: FailureKind) => !BEFORE_RATE_LIMIT.has(kind) || (kind === 'GW_INVALID_REQUEST' && callsTikTok)
  const byStatus = new Map<number, FailureKind[]>()
  for (const kind of kinds) {
    const { status } = problemKinds[kind]
    byStatus.set(status, [...(byStatus.get(status) ?? []), kind])
  }
  return Object.fromEntries(
    [...byStatus].map(([status, ofStatus]) => [
      status,
      {
        description: ofStatus.map((kind) => problemKinds[kind].title).join('; '),
        headers: {
          ...REQUEST_ID_HEADER,
          ...(status === 401 && WWW_AUTHENTICATE_HEADER),
          ...((status === 429 || status === 503) && RETRY_AFTER_HEADER),
          ...(rateLimited && ofStatus.some(counted) && RATE_LIMIT_HEADERS)
        },
        content: {
          'application/problem+json': {
            schema: ref(Problem),
            examples: Object.fromEntries(ofStatus.map((kind) => [exampleName(kind), example(kind, instance)]))
          }
        }
      }
    ])
  )
}

function exampleName(kind: FailureKind): string {
  return problemKinds[kind].type.slice(problemKinds[kind].type.lastIndexOf(':') + 1)
}

function example(kind: FailureKind, instance: string) {
  const { type, title, status } = problemKinds[kind]
  const { detail, code } = EXAMPLES[kind]
  const upstream = code !== undefined && { code, log_id: '20261125063600ABCDEF' }
  return { summary: title, value: { type, title, status, detail, instance, request_id: '5dc2510a-fb00-442d-8db6-000000000001', ...upstream } }
}

/** The problem types as a Markdown table, for the API description. */
export function problemTypesTable(): string {
  const rows = KINDS.map((kind) => `| ${problemKinds[kind].status} | \`${problemKinds[kind].type}\` | ${problemKinds[kind].title} |`)
  return ['| status | type | title |', '|---|---|---|', ...rows].join('\n')
}
