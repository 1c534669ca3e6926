import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { EXPORT_EXAMPLE, ExportLine, ExportQuerystring } from '../schemas/export.js'
import { FollowersParams } from '../schemas/followers.js'
import { problemResponses } from '../schemas/problem.js'
import { SECURITY } from '../plugins/swagger.js'
import type { Relation } from '../services/pages.js'

export const NDJSON = 'application/x-ndjson'

const WHAT: Record<Relation, string> = { followers: "a TikTok user's followers", following: 'the accounts a TikTok user follows' }

/** A user's whole list as NDJSON, streamed as the client reads it. */
const exportRoutes: FastifyPluginAsyncTypebox = async (app) => {
  for (const relation of ['followers', 'following'] as const) {
    app.get(
      `/v1/users/:username/${relation}/export`,
      {
        onRequest: app.authenticate,
        config: { rateLimit: {} },
        schema: {
          tags: ['exports'],
          summary: `All of ${WHAT[relation]}, streamed as NDJSON`,
          description:
            'One line per account, `{"username","display_name"}`, newest first and each once; the last line is always ' +
            '`{"export":{…}}`: `complete` is true only when TikTok said there is nothing more; otherwise pass its ' +
            '`resume_cursor` as `cursor` to continue right after the last account sent (across a resume, TikTok\'s cursor ' +
            'decides). Pages of 100 come through the page cache (a second export of the same list costs no quota) and ' +
            "count against the team's and your daily budget; a budget spent mid-stream ends it with `reason: \"quota\"`. " +
            'The next page is fetched only as you read, and none after you disconnect. If the first page fails (unknown ' +
            'or private user, budget already spent) the answer is the usual problem, not a 200.',
          security: SECURITY,
          params: FollowersParams,
          querystring: ExportQuerystring,
          response: {
            200: {
              description: 'The accounts, one JSON value per line, then the end line',
              headers: { 'Cache-Control': Type.String({ examples: ['no-store'] }) },
              content: { [NDJSON]: { schema: ExportLine, example: EXPORT_EXAMPLE } }
            },
            ...problemResponses({
              400: 'Invalid username or query parameters',
              401: 'Missing or unknown consumer key',
              403: 'The user is private, or TikTok cannot return them',
              404: 'TikTok has no such user',
              429: "Rate limit or daily budget reached before the first page (yours, the team's or TikTok's); see Retry-After",
              502: 'TikTok failed on the first page, after retries',
              503: "TikTok unreachable (or paused after repeated failures), the gateway overloaded, or TikTok rejects the gateway's credentials or scope",
              504: 'TikTok timed out on the first page after retries, or the first page passed the request deadline'
            })
          }
        }
      },
      async (request, reply) => {
        const username = request.params.username.toLowerCase()
        const { cursor, limit } = request.query
        const stream = await app.exports.open(relation, username, { cursor, limit }, { consumer: request.consumer, log: request.log })
        // The schema describes one line; the body is a stream of them.
        return reply.type(NDJSON).header('cache-control', 'no-store').send(stream as never)
      }
    )
  }
}

export default exportRoutes
