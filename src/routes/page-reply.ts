import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { LRUCache } from 'lru-cache'
import { loggedUrlJson } from '../access-log.js'
import { setHeaderPairs } from '../header-pairs.js'
import { rateLimitHeaders } from '../plugins/guards.js'
import { requestIdOf } from '../request-id.js'
import type { PagePipeline } from '../page-pipeline.js'
import type { PageResult, Pages } from '../services/pages.js'

declare module 'fastify' {
  interface FastifyInstance {
    fastHits: FastHits
  }
}

/**
 * The routed path's respond(): a result already in hand (a fresh hit from Pages) is sent
 * synchronously, with no promise, a pending one when it settles. `nextPrefix` is the next page's URL
 * without the cursor's value, for `Link: rel="next"`. Handlers return what this returns.
 */
export function replyWithPage(
  app: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  result: PageResult | Promise<PageResult>,
  nextPrefix?: string
): undefined | Promise<undefined> {
  if (result instanceof Promise) return result.then((settled) => replyWithPage(app, request, reply, settled, nextPrefix))
  app.fastHits.remember(request, result.key, nextPrefix)
  // The request id and the rate limit's headers are on the reply already: its hooks are admit()'s.
  const { status, headers, body } = app.pagePipeline.respond(result, nextPrefix, request.headers['if-none-match'])
  setHeaderPairs(reply, headers)
  reply.code(status).send(body)
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
 * The early path: answers requests for fresh pages before Fastify's router, which with its hooks
 * and validation cost a hit more than the hit itself (docs/architecture.md, "The cost of a cache hit"). A URL is answered here
 * only once the routed path validated it and answered it with a page: its exact text then names that
 * page. Which path answers is decided on that alone (a remembered URL whose page is fresh in memory);
 * from there the request goes through the page pipeline as on the routed path: admit(), then
 * respond() or its refusal (401, 429, 503), then record().
 */
export class FastHits {
  readonly #pages: Pages
  readonly #pipeline: PagePipeline
  readonly #aliases = new LRUCache<string, Alias>({ max: ALIASES })

  constructor(pages: Pages, pipeline: PagePipeline) {
    this.#pages = pages
    this.#pipeline = pipeline
  }

  /** Called by the routed path when it answered a GET with a page. */
  remember(request: FastifyRequest, key: string, nextPrefix: string | undefined): void {
    if (request.method !== 'GET' || this.#aliases.has(request.url)) return
    this.#aliases.set(request.url, { key, route: request.routeOptions.url ?? '', loggedUrlJson: loggedUrlJson(request), nextPrefix })
  }

  /** Answers `req` if it asks for a fresh page by a remembered URL; false leaves it to Fastify. */
  serve(req: IncomingMessage, res: ServerResponse): boolean {
    const started = performance.now()
    const url = req.url
    const alias = req.method === 'GET' && url !== undefined ? this.#aliases.get(url) : undefined
    if (alias === undefined || url === undefined) return false
    const pipeline = this.#pipeline
    const result = this.#pages.peekFresh(alias.key)
    if (result === undefined) return false
    const admission = pipeline.admit(req.headers)
    // Only the shared count can decide the rate limit; nothing was counted, and the routed path waits for it.
    if (admission === undefined) return false

    const { consumer, decision, refusal } = admission
    const reqId = requestIdOf(req)
    const headers = ['x-request-id', reqId]
    if (decision !== undefined) rateLimitHeaders(decision, headers)
    const answer =
      refusal === undefined ? pipeline.respond(result, alias.nextPrefix, req.headers['if-none-match'], headers) : pipeline.refuse(refusal, url, reqId, headers)
    res.writeHead(answer.status, answer.headers).end(answer.body)
    pipeline.record({ reqId, method: 'GET', route: alias.route, urlJson: alias.loggedUrlJson, status: answer.status, ms: performance.now() - started, consumer })
    return true
  }
}
