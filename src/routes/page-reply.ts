import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { LRUCache } from 'lru-cache'
import { loggedUrlJson, type AccessLog } from '../access-log.js'
import { requestIdOf } from '../request-id.js'
import { passOnCounted, rateLimitHeaders, setHeaderPairs, type HeaderPairs } from '../plugins/guards.js'
import type { PageResult } from '../services/pages.js'

declare module 'fastify' {
  interface FastifyInstance {
    fastHits: FastHits
  }
}

const X_CACHE = { hit: 'HIT', coalesced: 'MISS', miss: 'MISS', stale: 'STALE' } as const
const JSON_TYPE = 'application/json; charset=utf-8'

/**
 * Adds ETag, Cache-Control for the time the page stays fresh, X-Cache, and `Link: rel="next"` when
 * there is a next page; Age only on a stale page (max-age=0). A fresh hit has none: its max-age is
 * already what is left, and an HTTP cache subtracts Age from max-age.
 */
function pageHeaders({ page, outcome, ageSeconds, freshSeconds }: PageResult, nextPrefix: string | undefined, pairs: HeaderPairs = []): HeaderPairs {
  pairs.push('etag', page.etag, 'cache-control', `private, max-age=${freshSeconds}`, 'x-cache', X_CACHE[outcome])
  if (outcome === 'stale') pairs.push('age', String(ageSeconds))
  if (page.nextCursor !== undefined && nextPrefix !== undefined) pairs.push('link', `<${nextPrefix}${page.nextCursor}>; rel="next"`)
  return pairs
}

/**
 * Answers a page route: a result already in hand (a fresh hit from Pages) is sent synchronously,
 * with no promise, a pending one when it settles. `nextPrefix` is the next page's URL without the
 * cursor's value, for `Link: rel="next"`. Handlers return what this returns.
 */
export function replyWithPage(
  app: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  result: PageResult | Promise<PageResult>,
  nextPrefix?: string
): undefined | Promise<undefined> {
  if (result instanceof Promise) return result.then((settled) => replyWithPage(app, request, reply, settled, nextPrefix))
  app.metrics.cacheRequest(result.outcome)
  app.fastHits.remember(request, result.key, nextPrefix)
  setHeaderPairs(reply, pageHeaders(result, nextPrefix))
  // No payload: a serialised `null` would go out as `content-length: 4`, which RFC 9110 forbids on a 304.
  if (matchesEtag(request.headers['if-none-match'], result.page.etag)) reply.code(304).send()
  // The stored bytes are the serialised answer; sending them skips serialisation on every hit.
  else reply.type(JSON_TYPE).send(result.page.body)
  // Not the reply: Fastify would send a synchronously returned reply a second time.
  return undefined
}

/** What the routed path learnt about a URL it answered with a page. */
interface Alias {
  key: string
  /** The route's path pattern, the metrics' label. */
  route: string
  /** The URL as the access line writes it, as a JSON string. */
  loggedUrlJson: string
  nextPrefix: string | undefined
}

/** URLs remembered: the hot ones; a URL forgotten is answered by the routed path, which remembers it again. */
const ALIASES = 1024

/**
 * Answers fresh cache hits before Fastify's router, which with its hooks and validation cost a hit
 * more than the hit itself (docs/architecture.md, "The cost of a cache hit"). A URL is answered here only once the routed path
 * validated it and answered it with a page: its exact text then names that page. Everything else
 * about the request is checked as the routed path checks it, with the same functions (consumer,
 * load shedding, rate limit, request id, headers, metrics, access line); whatever this path cannot
 * answer as a fresh hit (no or bad key, an expired page, the rate limit reached) goes to Fastify.
 */
export class FastHits {
  readonly #app: FastifyInstance
  readonly #accessLog: AccessLog
  readonly #aliases = new LRUCache<string, Alias>({ max: ALIASES })

  constructor(app: FastifyInstance, accessLog: AccessLog) {
    this.#app = app
    this.#accessLog = accessLog
  }

  /** Called by the routed path when it answered a GET with a page. */
  remember(request: FastifyRequest, key: string, nextPrefix: string | undefined): void {
    if (request.method !== 'GET' || this.#aliases.has(request.url)) return
    this.#aliases.set(request.url, { key, route: request.routeOptions.url ?? '', loggedUrlJson: loggedUrlJson(request), nextPrefix })
  }

  /** Answers `req` if it is a fresh hit on a remembered URL; false leaves it to Fastify. */
  serve(req: IncomingMessage, res: ServerResponse): boolean {
    const started = performance.now()
    const alias = req.method === 'GET' && req.url !== undefined ? this.#aliases.get(req.url) : undefined
    if (alias === undefined) return false
    const app = this.#app
    const result = app.pages.peekFresh(alias.key)
    if (result === undefined || app.shedsLoad()) return false
    let consumer
    try {
      consumer = app.consumerOf(req.headers)
    } catch {
      return false
    }
    const decision = app.stores.rateLimiter.tryTake(consumer.name)
    if (decision === undefined) return false
    if (!decision.allowed) {
      passOnCounted(req, decision)
      return false
    }

    const reqId = requestIdOf(req)
    const headers = pageHeaders(result, alias.nextPrefix, rateLimitHeaders(decision, ['x-request-id', reqId]))
    const { body, etag } = result.page
    const status = matchesEtag(req.headers['if-none-match'], etag) ? 304 : 200
    if (status === 200) headers.push('content-type', JSON_TYPE, 'content-length', String(body.length))
    res.writeHead(status, headers).end(status === 200 ? body : undefined)

    const ms = performance.now() - started
    app.metrics.cacheRequest('hit')
    app.metrics.requestServed('GET', alias.route, status, ms / 1000)
    this.#accessLog.write({ reqId, method: 'GET', urlJson: alias.loggedUrlJson, status, ms, consumer: consumer.name })
    return true
  }
}

/** RFC 9110 weak comparison, as If-None-Match requires. */
function matchesEtag(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false
  if (ifNoneMatch.trim() === '*') return true
  return ifNoneMatch.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === etag)
}
