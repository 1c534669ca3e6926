import { Readable } from 'node:stream'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import type { FailureKind } from '../errors.js'
import { CSV_RECORDS, RecordsQuerystring } from '../schemas/export.js'
import { ExportJob, ExportJobList, ExportJobParams, ExportRequest } from '../schemas/export-jobs.js'
import { Follower } from '../schemas/followers.js'
import { RATE_LIMIT_HEADERS, REQUEST_ID_HEADER } from '../schemas/headers.js'
import { ref } from '../schemas/named.js'
import { BODY_PROBLEMS, problemResponses } from '../schemas/problem.js'
import { NoQuery } from '../schemas/query.js'
import type { Viewer } from '../services/export-jobs.js'
import { recordText } from '../services/record-format.js'
import type { StoredJob } from '../stores/job-store.js'
import { formatOf, sendRecords } from './record-format.js'

const HEADERS = { ...REQUEST_ID_HEADER, ...RATE_LIMIT_HEADERS }
const COMMON_PROBLEMS: FailureKind[] = ['GW_UNAUTHORIZED', 'GW_CONSUMER_RATE_LIMITED', 'GW_OVERLOADED', 'GW_SHARED_STATE_UNAVAILABLE']
const EXAMPLE_ID = 'c0a8e0f2-2f4b-4a55-9c43-2b0f0b7d3c11'
const jobResponse = (description: string) => ({ description, headers: HEADERS, content: { 'application/json': { schema: ref(ExportJob) } } })
/** Another consumer's job is answered as a missing one: the owner's jobs are nobody else's business. */
const jobProblems = (instance: string) => problemResponses(['GW_INVALID_REQUEST', ...COMMON_PROBLEMS, 'GW_EXPORT_NOT_FOUND'], { instance, rateLimited: true })

const exportJobsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const common = { onRequest: app.authenticate, preHandler: app.limitConsumerRate }
  // Bodies here are JSON: Fastify's default text/plain parser would hand the schema a string (a 400), not a 415.
  app.removeContentTypeParser('text/plain')

  app.post(
    '/v1/exports',
    {
      ...common,
      schema: {
        operationId: 'createExportJob',
        tags: ['exports'],
        summary: "Start a job that exports a user's whole followers or following list",
        description:
          'The job pages through the list in the background, 100 accounts per TikTok call, through the page cache (pages ' +
          "already cached cost nothing). Its calls count against the team's budget, yours, and the export jobs' " +
          "(`EXPORT_DAILY_BUDGET`). When a budget or TikTok's quota is spent it pauses and resumes by itself at 00:00 UTC. " +
          'Poll `Location`; read the records at `/v1/exports/{id}/records`.',
        querystring: NoQuery,
        body: ref(ExportRequest),
        response: {
          202: {
            ...jobResponse('Accepted: the job, queued'),
            headers: { Location: Type.String({ description: 'The job', examples: [`/v1/exports/${EXAMPLE_ID}`] }), ...HEADERS }
          },
          ...problemResponses(['GW_INVALID_REQUEST', ...BODY_PROBLEMS, ...COMMON_PROBLEMS], { instance: '/v1/exports', rateLimited: true })
        }
      }
    },
    async (request, reply) => {
      const job = await app.exportJobs.create(request.consumer, request.body)
      return reply.code(202).header('location', `/v1/exports/${job.id}`).send(toExportJob(job))
    }
  )

  app.get(
    '/v1/exports',
    {
      ...common,
      schema: {
        operationId: 'listExportJobs',
        tags: ['exports'],
        summary: "Your export jobs (an admin key: everyone's)",
        description: 'Finished jobs are listed until they expire, `EXPORT_RETENTION_SECONDS` after they ended.',
        querystring: NoQuery,
        response: {
          200: { description: 'The jobs, newest first', headers: HEADERS, content: { 'application/json': { schema: ref(ExportJobList) } } },
          ...problemResponses(['GW_INVALID_REQUEST', ...COMMON_PROBLEMS], { instance: '/v1/exports', rateLimited: true })
        }
      }
    },
    async (request) => ({ jobs: (await app.exportJobs.list(viewer(request))).map(toExportJob) })
  )

  app.get(
    '/v1/exports/:id',
    {
      ...common,
      schema: {
        operationId: 'getExportJob',
        tags: ['exports'],
        summary: 'An export job: its state and progress',
        params: ExportJobParams,
        querystring: NoQuery,
        response: { 200: jobResponse('The job'), ...jobProblems(`/v1/exports/${EXAMPLE_ID}`) }
      }
    },
    async (request) => toExportJob(await app.exportJobs.get(request.params.id, viewer(request)))
  )

  app.get(
    '/v1/exports/:id/records',
    {
      ...common,
      schema: {
        operationId: 'getExportJobRecords',
        tags: ['exports'],
        summary: 'The accounts an export job has fetched so far, as NDJSON or CSV',
        description:
          'One line per account, `{"username","display_name"}` (the record lines of the streaming export), each account ' +
          'once, in the order TikTok returned them (newest first), streamed from storage; also while the job runs or is ' +
          'paused. Records are kept `EXPORT_RETENTION_SECONDS` after the job ends. `format=csv` (or `Accept: text/csv`) ' +
          "sends CSV rows instead; the job's state says whether they are the whole list.",
        params: ExportJobParams,
        querystring: RecordsQuerystring,
        response: {
          200: {
            description: 'The records, one JSON object per line',
            headers: HEADERS,
            content: { 'application/x-ndjson': { schema: ref(Follower) }, ...CSV_RECORDS }
          },
          ...jobProblems(`/v1/exports/${EXAMPLE_ID}/records`)
        }
      }
    },
    async (request, reply) => {
      const format = formatOf(request, request.query.format)
      const { job, batches } = await app.exportJobs.records(request.params.id, viewer(request))
      return sendRecords(reply, format, `${job.username}-${job.relation}`, Readable.from(recordText(batches, format)))
    }
  )

  app.delete(
    '/v1/exports/:id',
    {
      ...common,
      schema: {
        operationId: 'cancelExportJob',
        tags: ['exports'],
        summary: 'Cancel an export job',
        description:
          'Its running work stops (no further TikTok call, whichever replica runs it); the records fetched so far are kept ' +
          'until the job expires. A finished job is left as it is.',
        params: ExportJobParams,
        querystring: NoQuery,
        response: { 200: jobResponse('The job, cancelled (or as it finished)'), ...jobProblems(`/v1/exports/${EXAMPLE_ID}`) }
      }
    },
    async (request) => toExportJob(await app.exportJobs.cancel(request.params.id, viewer(request)))
  )
}

const viewer = (request: FastifyRequest): Viewer => ({ consumer: request.consumer, admin: request.consumerIsAdmin })

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString())

function toExportJob(job: StoredJob): ExportJob {
  return {
    id: job.id,
    owner: job.owner,
    username: job.username,
    relation: job.relation,
    max_records: job.maxRecords ?? null,
    state: job.state,
    records: job.records,
    pages: job.pages,
    created_at: new Date(job.createdAt).toISOString(),
    updated_at: new Date(job.updatedAt).toISOString(),
    resumes_at: iso(job.resumesAt),
    error: job.error ?? null
  }
}

export default exportJobsRoutes
