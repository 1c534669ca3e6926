import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { CSV_RECORDS, EXPORT_LINE_EXAMPLES, ExportLine, ExportQuerystring, type ExportEnd } from '../schemas/export.js'
import { FollowersParams } from '../schemas/followers.js'
import { RATE_LIMIT_HEADERS, REQUEST_ID_HEADER } from '../schemas/headers.js'
import { ALL_PROBLEMS, problemResponses } from '../schemas/problem.js'
import type { Relation } from '../schemas/export-jobs.js'
import { formatOf, sendRecords } from './record-format.js'

export const NDJSON = 'application/x-ndjson'

const WHAT: Record<Relation, string> = { followers: "a TikTok user's followers", following: 'the accounts a TikTok user follows' }

/** A CSV's end state, which its rows do not carry: HTTP trailers, sent after the last row. */
const TRAILERS: Record<string, (end: ExportEnd['export']) => string> = {
  'x-export-complete': (end) => String(end.complete),
  'x-export-reason': (end) => end.reason,
  'x-export-records': (end) => String(end.records),
  'x-export-resume-cursor': (end) => String(end.resume_cursor ?? '')
}

/** A user's whole list as NDJSON or CSV, streamed as the client reads it. */
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
          summary: `All of ${WHAT[relation]}, streamed as NDJSON or CSV`,
          description:
            'One line per account, `{"username","display_name"}`, newest first and each once; the last line is always ' +
            '`{"export":{…}}`: `complete` is true only when TikTok said there is nothing more; otherwise pass its ' +
            '`resume_cursor` as `cursor` to continue right after the last account sent (across a resume, TikTok\'s cursor ' +
            'decides). Pages of 100 come through the page cache (a second export of the same list costs no quota) and ' +
            "count against the team's and your daily budget; a budget spent mid-stream ends it with `reason: \"quota\"`. " +
            'The next page is fetched only as you read, and none after you disconnect. If the first page fails (unknown ' +
            'or private user, budget already spent) the answer is the usual problem, not a 200. ' +
            '`format=csv` (or `Accept: text/csv`) sends CSV rows instead, with no end line: the end state comes in the ' +
            'HTTP trailers `X-Export-Complete`, `X-Export-Reason`, `X-Export-Records` and `X-Export-Resume-Cursor` (curl ' +
            "and Node's HTTP clients read them; a file without `X-Export-Complete: true` is not the whole list).",
          params: FollowersParams,
          querystring: ExportQuerystring,
          response: {
            200: {
              description: 'The accounts, one JSON value per line, then the end line',
              headers: { 'Cache-Control': Type.String({ examples: ['no-store'] }), ...REQUEST_ID_HEADER, ...RATE_LIMIT_HEADERS },
              content: { [NDJSON]: { schema: ExportLine, examples: EXPORT_LINE_EXAMPLES }, ...CSV_RECORDS }
            },
            // Problems come only before the first line: a failure on a later page ends the stream with its end line.
            ...problemResponses(ALL_PROBLEMS, { instance: `/v1/users/tiktok/${relation}/export`, rateLimited: true })
          }
        }
      },
      async (request, reply) => {
        const username = request.params.username.toLowerCase()
        const { cursor, limit } = request.query
        const format = formatOf(request, request.query.format)
        const stream = await app.exports.open(relation, username, { cursor, limit, format }, { consumer: request.consumer, log: request.log })
        if (format === 'csv') {
          // Only a stream that ended has an end state; one cut short sends no trailers.
          for (const [name, value] of Object.entries(TRAILERS)) {
            reply.trailer(name, (_reply, _payload, done) => (stream.end ? done(null, value(stream.end.export)) : done(new Error('the export was cut short'))))
          }
        }
        return sendRecords(reply, format, `${username}-${relation}`, stream)
      }
    )
  }
}

export default exportRoutes
