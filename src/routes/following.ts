import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { FollowersParams } from '../schemas/followers.js'
import { FollowingPage, FollowingQuerystring } from '../schemas/following.js'
import { DEFAULT_MAX_COUNT } from '../schemas/query.js'
import { problemResponses } from '../schemas/problem.js'
import { SECURITY } from '../plugins/swagger.js'
import { sendPage } from './page-reply.js'

const followingRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/users/:username/following',
    {
      onRequest: app.authenticate,
      config: { rateLimit: {} },
      schema: {
        tags: ['following'],
        summary: 'A page of the accounts a TikTok user follows',
        description:
          'Newest first, paged, cached and charged exactly as the followers: follow `Link: rel="next"` (or pass the ' +
          'returned `cursor`) while `has_more` is true; `X-Cache`, `Age`, `ETag`/`If-None-Match` and stale-if-error as there.',
        security: SECURITY,
        params: FollowersParams,
        querystring: FollowingQuerystring,
        response: {
          200: {
            ...FollowingPage,
            description: 'A page of followed accounts',
            headers: {
              ETag: Type.String({ description: 'Send it back as If-None-Match to get 304' }),
              'Cache-Control': Type.String({ examples: ['private, max-age=300'] }),
              'X-Cache': Type.String({ enum: ['HIT', 'MISS', 'STALE'], description: 'MISS: this request spent TikTok quota; STALE: TikTok failed and an expired copy was served' }),
              Age: Type.Integer({ description: 'Seconds since the page was fetched from TikTok (HIT and STALE)' }),
              Link: Type.String({ description: 'The next page, while has_more', examples: ['</v1/users/tiktok/following?max_count=20&cursor=1735689000>; rel="next"'] })
            }
          },
          304: Type.Null({ description: 'Not modified: the page still matches If-None-Match' }),
          ...problemResponses({
            400: 'Invalid username or query parameters',
            401: 'Missing or unknown consumer key',
            403: 'The user is private, or TikTok cannot return them',
            404: 'TikTok has no such user',
            429: "Rate limit or daily budget reached (yours, the team's or TikTok's); see Retry-After",
            502: 'TikTok failed, after retries',
            503: "TikTok unreachable (or paused after repeated failures), the gateway overloaded, or TikTok rejects the gateway's credentials or scope",
            504: 'TikTok timed out after retries, or the request passed its deadline'
          })
        }
      }
    },
    async (request, reply) => {
      const username = request.params.username.toLowerCase()
      const { max_count: maxCount = DEFAULT_MAX_COUNT, cursor } = request.query
      const result = await app.pages.following({ username, maxCount, cursor }, { consumer: request.consumer, log: request.log })
      const { nextCursor } = result.page
      const next = nextCursor === undefined ? undefined : `/v1/users/${username}/following?max_count=${maxCount}&cursor=${nextCursor}`
      return sendPage(app, request, reply, result, next)
    }
  )
}

export default followingRoutes
