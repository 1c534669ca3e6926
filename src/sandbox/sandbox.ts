import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify'
import { USER_INFO_FIELDS } from '../upstream/wire.js'
import { followersPage, followingPage } from './followers.js'
import { sandboxUserInfo } from './user-info.js'

export interface SandboxOptions {
  clientKey: string
  clientSecret: string
  host?: string
  port?: number
  /** Lifetime of issued tokens (expires_in), 7200 s like TikTok's. */
  tokenTtlSeconds?: number
  now?: () => number
  faults?: Faults
}

/** Faults the research endpoints inject; each rate is the chance (0 to 1) per call. */
export interface Faults {
  /** Added before every answer. */
  latencyMs?: number
  /** 500 internal_error. */
  errorRate?: number
  /** A 504 with an HTML body, as TikTok's edge sends. */
  edgeTimeoutRate?: number
  /** The connection is reset without an answer. */
  resetRate?: number
  /** No answer at all, until the sandbox closes. */
  hangRate?: number
  /** 429 rate_limit_exceeded with this Retry-After. */
  rateLimitRate?: number
  rateLimitRetryAfterSeconds?: number
  /** Every call: 429 daily_quota_limit_exceeded. */
  quotaExhausted?: boolean
}

export interface SandboxStats {
  tokenExchanges: number
  followerCalls: number
  followingCalls: number
  userInfoCalls: number
}

type ResearchEndpoint = 'followers' | 'following' | 'info'
const STAT = { followers: 'followerCalls', following: 'followingCalls', info: 'userInfoCalls' } as const

export interface Sandbox {
  url: string
  stats: SandboxStats
  /** Invalidates every issued token, as a revocation on TikTok's side would. */
  revokeTokens(): void
  /** Replaces the injected faults. */
  setFaults(faults: Faults): void
  /**
   * Emits the endpoint's name ('followers', 'following', 'info') as each research call arrives
   * (before any fault), and 'answered' once its answer is sent.
   */
  events: EventEmitter
  close(): Promise<void>
}

/**
 * A stand-in for the TikTok Research API on loopback, with its exact wire format. Users whose name
 * starts with `ghost` do not exist, `private` are private accounts, `hidden` cannot be returned;
 * everyone else has deterministic synthetic followers, following and profile (see ./followers.ts:
 * `many1000000` has a million followers).
 */
export async function startSandbox(options: SandboxOptions): Promise<Sandbox> {
  const { clientKey, clientSecret, host = '127.0.0.1', port = 0, tokenTtlSeconds = 7200, now = Date.now } = options
  let faults = options.faults ?? {}
  const tokens = new Map<string, number>()
  const stats: SandboxStats = { tokenExchanges: 0, followerCalls: 0, followingCalls: 0, userInfoCalls: 0 }
  const events = new EventEmitter()
  // Hanging calls must not hold close() up.
  const app = Fastify({ logger: false, forceCloseConnections: true })

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })
  app.setErrorHandler((error: FastifyError, _request, reply) => apiError(reply, 400, 'invalid_params', error.message))

  app.post('/v2/oauth/token/', async (request, reply) => {
    stats.tokenExchanges++
    const form = (request.body ?? {}) as Record<string, string>
    if (form.grant_type !== 'client_credentials' || form.client_key !== clientKey || form.client_secret !== clientSecret) {
      return reply.code(401).send({ error: 'invalid_client', error_description: 'Client key or secret is incorrect.', log_id: logId() })
    }
    const token = `clt.${randomBytes(24).toString('base64url')}`
    tokens.set(token, now() + tokenTtlSeconds * 1000)
    return { access_token: token, expires_in: tokenTtlSeconds, token_type: 'Bearer' }
  })

  app.addHook('onResponse', async (request) => {
    if (request.routeOptions.url?.startsWith('/v2/research/')) events.emit('answered')
  })

  /** What every research endpoint does first: count, fault, token check, username check; an answer ends the call. */
  async function admit(endpoint: ResearchEndpoint, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    stats[STAT[endpoint]]++
    events.emit(endpoint)
    const fault = await injectFault(faults, reply)
    if (fault !== undefined) return fault
    const token = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1]
    const expiresAt = token === undefined ? undefined : tokens.get(token)
    if (expiresAt === undefined || expiresAt <= now()) {
      return apiError(reply, 401, 'access_token_invalid', 'The access token is invalid or not found in the request.')
    }
    const { username } = (request.body ?? {}) as Record<string, unknown>
    if (typeof username !== 'string' || username === '') return apiError(reply, 400, 'invalid_params', 'username is required')
    if (username.startsWith('ghost')) return apiError(reply, 400, 'invalid_params', `cannot find the user ${username}`)
    if (username.startsWith('private')) return apiError(reply, 400, 'invalid_params', `the user ${username} is private`)
    if (username.startsWith('hidden')) return apiError(reply, 400, 'invalid_params', "API cannot return this user's information")
    return undefined
  }

  const pageOf = { followers: followersPage, following: followingPage }
  for (const endpoint of ['followers', 'following'] as const) {
    app.post(`/v2/research/user/${endpoint}/`, async (request, reply) => {
      const refused = await admit(endpoint, request, reply)
      if (refused !== undefined) return refused
      const { username, max_count: maxCount = 20, cursor = Math.floor(now() / 1000) } = request.body as Record<string, unknown>
      if (!Number.isInteger(maxCount) || (maxCount as number) < 1 || (maxCount as number) > 100) {
        return apiError(reply, 400, 'invalid_params', 'max_count must be an integer between 1 and 100')
      }
      if (!Number.isInteger(cursor) || (cursor as number) < 0) {
        return apiError(reply, 400, 'invalid_params', 'cursor must be a non-negative integer')
      }
      const data = pageOf[endpoint](username as string, maxCount as number, cursor as number)
      return { data, error: { code: 'ok', message: '', log_id: logId() } }
    })
  }

  app.post('/v2/research/user/info/', async (request, reply) => {
    const refused = await admit('info', request, reply)
    if (refused !== undefined) return refused
    const { fields = '' } = request.query as Record<string, string | undefined>
    const requested = fields.split(',').filter((field) => field !== '')
    if (requested.length === 0) return apiError(reply, 400, 'invalid_params', 'fields is required')
    const unknown = requested.find((field) => !(USER_INFO_FIELDS as readonly string[]).includes(field))
    if (unknown !== undefined) return apiError(reply, 400, 'invalid_params', `invalid field: ${unknown}`)
    const info = sandboxUserInfo((request.body as { username: string }).username)
    const data = Object.fromEntries(requested.map((field) => [field, info[field as keyof typeof info]]))
    return { data, error: { code: 'ok', message: '', log_id: logId() } }
  })

  const address = await app.listen({ host, port })
  return {
    url: address,
    stats,
    revokeTokens: () => tokens.clear(),
    setFaults: (next) => {
      faults = next
    },
    events,
    close: () => app.close()
  }
}

const chance = (rate = 0): boolean => Math.random() < rate

/** Answers with an injected fault, or returns undefined to answer normally. */
async function injectFault(faults: Faults, reply: FastifyReply): Promise<FastifyReply | undefined> {
  if (faults.latencyMs) await sleep(faults.latencyMs)
  if (chance(faults.hangRate)) return new Promise<never>(() => {})
  if (chance(faults.resetRate)) {
    reply.raw.socket?.destroy()
    return reply.hijack()
  }
  if (faults.quotaExhausted) return apiError(reply, 429, 'daily_quota_limit_exceeded', 'Daily quota limit exceeded')
  if (chance(faults.rateLimitRate)) {
    reply.header('retry-after', String(faults.rateLimitRetryAfterSeconds ?? 1))
    return apiError(reply, 429, 'rate_limit_exceeded', 'API rate limit exceeded')
  }
  if (chance(faults.errorRate)) return apiError(reply, 500, 'internal_error', 'Something went wrong. Please try again later.')
  if (chance(faults.edgeTimeoutRate)) {
    return reply.code(504).type('text/html').send('<html><body><h1>504 Gateway Time-out</h1></body></html>')
  }
  return undefined
}

function apiError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).send({ data: {}, error: { code, message, log_id: logId() } })
}

/** TikTok's log ids look like a timestamp followed by hex. */
function logId(): string {
  return new Date().toISOString().replace(/\D/g, '').slice(0, 14) + randomBytes(8).toString('hex').toUpperCase()
}
