import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { FollowersParams } from '../schemas/followers.js'
import { UserProfile } from '../schemas/profile.js'
import { problemResponses } from '../schemas/problem.js'
import { QueryString } from '../schemas/query.js'
import { SECURITY } from '../plugins/swagger.js'
import { sendPage } from './page-reply.js'

const profileRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/v1/users/:username',
    {
      onRequest: app.authenticate,
      config: { rateLimit: {} },
      schema: {
        tags: ['profile'],
        summary: "A TikTok user's profile and counts",
        description:
          'Display name, bio, avatar, verification, and follower, following, like and video counts (Query User Info, ' +
          'every field). Cached `CACHE_TTL_PROFILE_SECONDS` (an hour by default); `X-Cache`, `Age`, `ETag`/`If-None-Match` ' +
          'and stale-if-error as for the followers.',
        security: SECURITY,
        params: FollowersParams,
        // No parameters: a stray one (fields=…) is a 400, not silently ignored.
        querystring: QueryString({}),
        response: {
          200: {
            ...UserProfile,
            description: 'The profile',
            headers: {
              ETag: Type.String({ description: 'Send it back as If-None-Match to get 304' }),
              'Cache-Control': Type.String({ examples: ['private, max-age=3600'] }),
              'X-Cache': Type.String({ enum: ['HIT', 'MISS', 'STALE'], description: 'MISS: this request spent TikTok quota; STALE: TikTok failed and an expired copy was served' }),
              Age: Type.Integer({ description: 'Seconds since the profile was fetched from TikTok (HIT and STALE)' })
            }
          },
          304: Type.Null({ description: 'Not modified: the profile still matches If-None-Match' }),
          ...problemResponses({
            400: 'Invalid username',
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
      return sendPage(app, request, reply, await app.pages.profile(username, { consumer: request.consumer, log: request.log }))
    }
  )
}

export default profileRoutes
