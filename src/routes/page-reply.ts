import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { PageResult } from '../services/pages.js'

const X_CACHE = { hit: 'HIT', coalesced: 'MISS', miss: 'MISS', stale: 'STALE' } as const

/**
 * Answers with a cached page as every page route does: ETag and If-None-Match, Cache-Control for
 * the time it stays fresh, X-Cache and Age, and `Link: rel="next"` when `next` is given.
 */
export function sendPage(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply, result: PageResult, next?: string): FastifyReply {
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

/** RFC 9110 weak comparison, as If-None-Match requires. */
function matchesEtag(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false
  if (ifNoneMatch.trim() === '*') return true
  return ifNoneMatch.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === etag)
}
