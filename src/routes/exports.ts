import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { EXPORT_LINE_EXAMPLES, ExportLine, ExportQuerystring } from '../schemas/export.js'
import { FollowersParams } from '../schemas/followers.js'
import { RATE_LIMIT_HEADERS, REQUEST_ID_HEADER } from '../schemas/headers.js'
import { ALL_PROBLEMS, problemResponses } from '../schemas/problem.js'
import type { Relation } from '../schemas/export-jobs.js'

export const NDJSON = 'application/x-ndjson'

const WHAT: Record<Relation, string> = { followers: "a TikTok user's followers", following: 'the accounts a TikTok user follows' }

/** A user's whole list as NDJSON, streamed as the client reads it. */
const exportRoutes: FastifyPluginAsyncTypebox = async (app) => {
  for (const relation of ['followers', 'following'] as const) {
    app.get(
      `/v1/users/:username/${relation}/export`,
      {
        onRequest: app.authenticate,
        preHandler: app.limitConsumerRate,
        // A HEAD would stream, and pay for, the whole list only to send no body.
        exposeHeadRoute: false,
        schema: {
          operationId: relation === 'followers' ? 'exportFollowers' : 'exportFollowing',
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
          params: FollowersParams,
          querystring: ExportQuerystring,
          response: {
            200: {
              description: 'The accounts, one JSON value per line, then the end line',
              headers: { 'Cache-Control': Type.String({ examples: ['no-store'] }), ...REQUEST_ID_HEADER, ...RATE_LIMIT_HEADERS },
              content: { [NDJSON]: { schema: ExportLine, examples: EXPORT_LINE_EXAMPLES } }
            },
            // Problems come only before the first line: a failure on a later page ends the stream with its end line.
            ...problemResponses(ALL_PROBLEMS, { instance: `/v1/users/tiktok/${relation}/export`, rateLimited: true })
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
