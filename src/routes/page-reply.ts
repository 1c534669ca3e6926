import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { PageResult } from '../services/pages.js'

const X_CACHE = { hit: 'HIT', coalesced: 'MISS', miss: 'MISS', stale: 'STALE' } as const

/**
 * Answers with a cached page as every page route does: ETag and If-None-Match, Cache-Control for
 * the time it stays fresh, X-Cache and Age, and `Link: rel="next"` when `next` is given.
 */
function sendPage(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply, result: PageResult, next?: string): FastifyReply {
  const { page, outcome, ageSeconds, freshSeconds } = result
  app.metrics.cacheRequests.inc({ outcome })
  reply.header('etag', page.etag).header('cache-control', `private, max-age=${freshSeconds}`).header('x-cache', X_CACHE[outcome])
  if (outcome === 'hit' || outcome === 'stale') reply.header('age', String(ageSeconds))
  if (next !== undefined) reply.header('link', `<${next}>; rel="next"`)
  // No payload: a serialised `null` would go out as `content-length: 4`, which RFC 9110 forbids on a 304.
  if (matchesEtag(request.headers['if-none-match'], page.etag)) return reply.code(304).send()
  // The stored bytes are the serialised answer; sending them skips serialisation on every hit.
  return reply.type('application/json; charset=utf-8').send(page.body)
}

/**
 * Answers a page route: a result already in hand (a fresh hit from Pages) is sent synchronously,
 * with no promise, a pending one when it settles. `nextPrefix` is the next page's URL without the
 * cursor's value, for `Link: rel="next"` when the page has one. Handlers return what this returns.
 */
export function replyWithPage(
  app: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  result: PageResult | Promise<PageResult>,
  nextPrefix?: string
): undefined | Promise<undefined> {
  if (result instanceof Promise) return result.then((settled) => replyWithPage(app, request, reply, settled, nextPrefix))
  const { nextCursor } = result.page
  sendPage(app, request, reply, result, nextCursor === undefined || nextPrefix === undefined ? undefined : `${nextPrefix}${nextCursor}`)
  // Not the reply: Fastify would send a synchronously returned reply a second time.
  return undefined
}

/** RFC 9110 weak comparison, as If-None-Match requires. */
function matchesEtag(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false
  if (ifNoneMatch.trim() === '*') return true
  return ifNoneMatch.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === etag)
}
