import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { FollowersPage, FollowersParams, FollowersQuerystring } from '../schemas/followers.js'
import { DEFAULT_MAX_COUNT } from '../schemas/query.js'
import { CACHE_HEADERS, RATE_LIMIT_HEADERS, REQUEST_ID_HEADER } from '../schemas/headers.js'
import { ALL_PROBLEMS, problemResponses } from '../schemas/problem.js'
import { ref } from '../schemas/named.js'
import { replyWithPage } from './page-reply.js'

const followersRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/users/:username/followers',
    {
      // admit(): shed load and authenticate, then, after validation, the consumer's rate limit.
      ...app.pagePipeline.routeOptions,
      schema: {
        operationId: 'getFollowers',
        tags: ['followers'],
        summary: "A page of a TikTok user's followers",
        description:
          'Newest followers first. Follow `Link: rel="next"` (or pass the returned `cursor`) while `has_more` is true. ' +
          'Pages are cached: without `cursor` for a few minutes, with a past `cursor` for a day; ' +
          '`X-Cache` says whether this answer cost TikTok quota. Send `If-None-Match` with the `ETag` to get 304. ' +
          'When TikTok fails (5xx, timeout, rate limit, quota spent) and an expired copy is held, it is served with ' +
          '`X-Cache: STALE` and its `Age`. Each call to TikTok counts against the team\'s and your daily budget (see /v1/quota).',
        params: FollowersParams,
        querystring: FollowersQuerystring,
        response: {
          200: {
            description: 'A page of followers',
            headers: {
              ...CACHE_HEADERS,
              Link: Type.String({ description: 'The next page, while has_more', examples: ['</v1/users/tiktok/followers?max_count=20&cursor=1735689000>; rel="next"'] }),
              ...REQUEST_ID_HEADER,
              ...RATE_LIMIT_HEADERS
            },
            content: { 'application/json': { schema: ref(FollowersPage) } }
          },
          // No body (OpenAPI: `type: 'null'`), typed `undefined` so that the handler sends none at all.
          304: Type.Unsafe<undefined>({
            type: 'null',
            description: 'Not modified: the page still matches If-None-Match',
            headers: { ETag: Type.String({ description: 'The page\'s ETag' }), ...REQUEST_ID_HEADER, ...RATE_LIMIT_HEADERS }
          }),
          ...problemResponses(ALL_PROBLEMS, { instance: '/v1/users/tiktok/followers', rateLimited: true })
        }
      }
    },
    (request, reply) => {
      // TikTok usernames are case-insensitive: one spelling, one cache entry, one upstream call.
      const username = request.params.username.toLowerCase()
      const { max_count: maxCount = DEFAULT_MAX_COUNT, cursor } = request.query
      return replyWithPage(app, request, reply, app.pages.followers({ username, maxCount, cursor }, request), `/v1/users/${username}/followers?max_count=${maxCount}&cursor=`)
    }
  )
}

export default followersRoutes
