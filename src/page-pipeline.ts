import type { IncomingHttpHeaders } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { AccessLog, Answered } from './access-log.js'
import { isGatewayError, type GatewayError } from './errors.js'
import type { Metrics } from './metrics.js'
import type { HeaderPairs } from './header-pairs.js'
import { rateRefusal } from './plugins/guards.js'
import { answerError } from './plugins/problem-details.js'
import type { PageResult } from './services/pages.js'
import type { RateDecision, RateLimiter } from './stores/rate-limiter.js'

declare module 'fastify' {
  interface FastifyInstance {
    pagePipeline: PagePipeline
  }
}

/** What admit() says of a request. */
export interface Admission {
  /** The consumer its key names; '' when refused before authentication. */
  consumer: string
  /** Set once the request was counted against the consumer's rate limit. */
  decision: RateDecision | undefined
  refusal: GatewayError | undefined
}

/** An answer as both entry points send it. */
export interface Answer {
  status: number
  headers: HeaderPairs
  body: Buffer | string | undefined
}

/**
 * Every hook a page route runs on the routed path, in order, by name, and what the early path does
 * in its place. test/routes/page-pipeline.test.ts fails when a page route has a hook not listed here:
 * a hook added later (CORS, security headers) needs its counterpart on the early path first. The
 * headers each sets are checked by sending every page scenario through both paths (same test).
 */
export const PAGE_ROUTE_HOOKS = {
  onRequest: {
    requestIdAndHost: 'the x-request-id header goes first in the early answer; a request without Host is left to the router (src/lifecycle.ts)',
    onRequest: "under-pressure's (only with MAX_EVENT_LOOP_DELAY_MS > 0): it samples the lag and decides nothing",
    shedLoad: "the guards' (only with MAX_EVENT_LOOP_DELAY_MS > 0): it leaves routes with `loadShedding: 'admit'` to admit()",
    admitConsumer: 'admit(): shed load, authenticate'
  },
  preHandler: {
    limitConsumerRate: 'admit(): the rate limit, after validation (a URL the early path remembers was validated)'
  },
  onSend: {
    closeWhenClosing: 'while the app closes, the early path answers nothing (src/lifecycle.ts)'
  }
} as const

const X_CACHE = { hit: 'HIT', coalesced: 'MISS', miss: 'MISS', stale: 'STALE' } as const
const JSON_TYPE = 'application/json; charset=utf-8'

/**
 * The one pipeline of a page request (followers, following, profile): admit() the request (shed load,
 * authenticate, rate limit, in that order), respond() with its page (or refuse() it), record() the
 * answer (metrics, access line). The routed path runs admit() as the page routes' hooks and respond()
 * in their handlers (src/routes/page-reply.ts); Fastify's log controller records it. The early path
 * of fresh hits (FastHits) calls the same functions before the router.
 */
export class PagePipeline {
  readonly #app: FastifyInstance
  readonly #accessLog: AccessLog
  readonly #limiter: RateLimiter
  readonly #metrics: Metrics

  /** Made once the services and guards are registered: it holds on to what a hit uses, not looked up per request. */
  constructor(app: FastifyInstance, accessLog: AccessLog) {
    this.#app = app
    this.#accessLog = accessLog
    this.#limiter = app.stores.rateLimiter
    this.#metrics = app.metrics
  }

  /** A page route's options: admit() as its hooks, load shed by admit() rather than by under-pressure's hook. */
  get routeOptions() {
    return { onRequest: this.admitConsumer, preHandler: this.#app.limitConsumerRate, config: { loadShedding: 'admit' as const } }
  }

  /**
   * Admits a request, synchronously: undefined when only a shared count (Redis) can decide its rate
   * limit, in which case nothing was counted.
   */
  admit(headers: IncomingHttpHeaders): Admission | undefined {
    const overload = this.#app.overload()
    if (overload !== undefined) return { consumer: '', decision: undefined, refusal: overload }
    let consumer: string
    try {
      consumer = this.#app.consumerOf(headers).name
    } catch (err) {
      if (!isGatewayError(err)) throw err
      return { consumer: '', decision: undefined, refusal: err }
    }
    const decision = this.#limiter.tryTake(consumer)
    if (decision === undefined) return undefined
    return { consumer, decision, refusal: rateRefusal(consumer, decision) }
  }

  /** admit()'s first steps as a page route's onRequest hook: the rate limit follows validation, as limitConsumerRate. */
  readonly admitConsumer = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    const overload = this.#app.overload()
    if (overload !== undefined) done(overload)
    else this.#app.authenticate(request, reply, done)
  }

  /**
   * A page's answer after `headers` (the request id, the rate limit's): 304 when If-None-Match
   * matches, else the stored bytes, which are the serialised answer. Counts the cache outcome.
   */
  respond(result: PageResult, nextPrefix: string | undefined, ifNoneMatch: string | undefined, headers: HeaderPairs = []): Answer {
    this.#metrics.cacheRequest(result.outcome)
    const { page, outcome, ageSeconds, freshSeconds } = result
    // A fresh hit has no Age: its max-age is already what is left, and an HTTP cache subtracts Age from max-age.
    headers.push('etag', page.etag, 'cache-control', `private, max-age=${freshSeconds}`, 'x-cache', X_CACHE[outcome])
    if (outcome === 'stale') headers.push('age', String(ageSeconds))
    if (page.nextCursor !== undefined && nextPrefix !== undefined) headers.push('link', `<${nextPrefix}${page.nextCursor}>; rel="next"`)
    // No body: RFC 9110 forbids a content-length on a 304 for a body it does not carry.
    if (matchesEtag(ifNoneMatch, page.etag)) return { status: 304, headers, body: undefined }
    headers.push('content-type', JSON_TYPE, 'content-length', String(page.body.length))
    return { status: 200, headers, body: page.body }
  }

  /** A refusal's problem, as the routed path's error handler answers it (answerError), after `headers`. */
  refuse(refusal: GatewayError, url: string, reqId: string, headers: HeaderPairs): Answer {
    const { problem, headers: own } = answerError(refusal, url, reqId, this.#app.log.child({ reqId }))
    const body = JSON.stringify(problem)
    headers.push(...own, 'content-length', String(Buffer.byteLength(body)))
    return { status: problem.status, headers, body }
  }

  /** Metrics and access line of an answered request. */
  record(answered: Answered): void {
    this.#accessLog.record(answered)
  }
}

/** RFC 9110 weak comparison, as If-None-Match requires. */
function matchesEtag(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false
  if (ifNoneMatch.trim() === '*') return true
  return ifNoneMatch.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === etag)
}
