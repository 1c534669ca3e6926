import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { FollowersParams } from '../schemas/followers.js'
import { UserProfile } from '../schemas/profile.js'
import { CACHE_HEADERS, RATE_LIMIT_HEADERS, REQUEST_ID_HEADER } from '../schemas/headers.js'
import { ref } from '../schemas/named.js'
import { ALL_PROBLEMS, problemResponses } from '../schemas/problem.js'
import { NoQuery } from '../schemas/query.js'
import { replyWithPage } from './page-reply.js'

const profileRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/users/:username',
    {
      ...app.pagePipeline.routeOptions,
      schema: {
        operationId: 'getUserProfile',
        tags: ['profile'],
        summary: "A TikTok user's profile and counts",
        description:
          'Display name, bio, avatar, verification, and follower, following, like and video counts (Query User Info, ' +
          'every field). Cached `CACHE_TTL_PROFILE_SECONDS` (an hour by default); `X-Cache`, `ETag`/`If-None-Match` and ' +
          'stale-if-error as for the followers.',
        params: FollowersParams,
        querystring: NoQuery,
        response: {
          200: {
            description: 'The profile',
            headers: {
              ...CACHE_HEADERS,
              ...REQUEST_ID_HEADER,
              ...RATE_LIMIT_HEADERS
            },
            content: { 'application/json': { schema: ref(UserProfile) } }
          },
          304: {
            ...Type.Null(),
            description: 'Not modified: the profile still matches If-None-Match',
            headers: { ETag: Type.String({ description: "The profile's ETag" }), ...REQUEST_ID_HEADER, ...RATE_LIMIT_HEADERS }
          },
          ...problemResponses(ALL_PROBLEMS, { instance: '/v1/users/tiktok', rateLimited: true })
        }
      }
    },
    (request, reply) => {
      const username = request.params.username.toLowerCase()
      return replyWithPage(app, request, reply, app.pages.profile(username, request))
    }
  )
}

export default profileRoutes
