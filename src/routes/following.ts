import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { FollowersParams } from '../schemas/followers.js'
import { FollowingPage, FollowingQuerystring } from '../schemas/following.js'
import { DEFAULT_MAX_COUNT } from '../schemas/query.js'
import { CACHE_HEADERS, RATE_LIMIT_HEADERS, REQUEST_ID_HEADER } from '../schemas/headers.js'
import { ref } from '../schemas/named.js'
import { ALL_PROBLEMS, problemResponses } from '../schemas/problem.js'
import { replyWithPage } from './page-reply.js'

const followingRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/users/:username/following',
    {
      ...app.pagePipeline.routeOptions,
      schema: {
        operationId: 'getFollowing',
        tags: ['following'],
        summary: 'A page of the accounts a TikTok user follows',
        description:
          'Newest first, paged, cached and charged exactly as the followers: follow `Link: rel="next"` (or pass the ' +
          'returned `cursor`) while `has_more` is true; `X-Cache`, `ETag`/`If-None-Match` and stale-if-error as there.',
        params: FollowersParams,
        querystring: FollowingQuerystring,
        response: {
          200: {
            description: 'A page of followed accounts',
            headers: {
              ...CACHE_HEADERS,
              Link: Type.String({ description: 'The next page, while has_more', examples: ['</v1/users/tiktok/following?max_count=20&cursor=1735689000>; rel="next"'] }),
              ...REQUEST_ID_HEADER,
              ...RATE_LIMIT_HEADERS
            },
            content: { 'application/json': { schema: ref(FollowingPage) } }
          },
          304: {
            ...Type.Null(),
            description: 'Not modified: the page still matches If-None-Match',
            headers: { ETag: Type.String({ description: "The page's ETag" }), ...REQUEST_ID_HEADER, ...RATE_LIMIT_HEADERS }
          },
          ...problemResponses(ALL_PROBLEMS, { instance: '/v1/users/tiktok/following', rateLimited: true })
        }
      }
    },
    (request, reply) => {
      const username = request.params.username.toLowerCase()
      const { max_count: maxCount = DEFAULT_MAX_COUNT, cursor } = request.query
      return replyWithPage(app, request, reply, app.pages.following({ username, maxCount, cursor }, request), `/v1/users/${username}/following?max_count=${maxCount}&cursor=`)
    }
  )
}

export default followingRoutes
