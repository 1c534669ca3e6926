import { Type, type Static } from 'typebox'
import { USERNAME_PATTERN } from './followers.js'
import { named, ref } from './named.js'
import { AccountLimit } from './query.js'

export const Relation = Type.Enum(['followers', 'following'] as const, { description: 'Whose list: the accounts following the user, or those it follows.' })
export type Relation = Static<typeof Relation>

export const EXPORT_STATES = ['queued', 'running', 'paused', 'done', 'failed', 'cancelled'] as const
export const ExportState = Type.Enum(EXPORT_STATES, {
  description:
    'queued: waiting for a replica (also between retries after a TikTok failure); running: paging; paused: a budget or ' +
    "TikTok's quota is spent, until `resumes_at`; done, failed, cancelled: finished."
})
export type ExportState = Static<typeof ExportState>

export const ExportRequest = named(
  'ExportRequest',
  Type.Object(
    {
      username: Type.String({ pattern: USERNAME_PATTERN, description: 'TikTok username; case-insensitive.', examples: ['tiktok'] }),
      relation: Relation,
      max_records: Type.Optional(AccountLimit('Stop after this many accounts (all of them when omitted).'))
    },
    { additionalProperties: false, examples: [{ username: 'tiktok', relation: 'followers', max_records: 5000 }] }
  )
)
export type ExportRequest = Static<typeof ExportRequest>

export const ExportJobParams = Type.Object({
  // The id is part of a storage key: no `:` or anything else that could name another key reaches it.
  id: Type.String({ pattern: '^[A-Za-z0-9-]{1,64}$', description: 'The job id from `POST /v1/exports`.' })
})

export const ExportJob = named(
  'ExportJob',
  Type.Object(
    {
      id: Type.String(),
      owner: Type.String({ description: 'The consumer who created the job.' }),
      username: Type.String({ description: 'Lower-cased.' }),
      relation: Relation,
      max_records: Type.Union([Type.Integer(), Type.Null()]),
      state: ExportState,
      records: Type.Integer({ description: 'Accounts fetched so far, each once.' }),
      pages: Type.Integer({ description: 'Pages of 100 read so far (cached pages cost no quota).' }),
      created_at: Type.String({ format: 'date-time' }),
      updated_at: Type.String({ format: 'date-time' }),
      resumes_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'While paused: the next 00:00 UTC, when the job resumes by itself.' }),
      error: Type.Union([Type.String(), Type.Null()], { description: 'Why the job failed, paused or waits to retry.' })
    },
    {
      examples: [
        {
          id: 'c0a8e0f2-2f4b-4a55-9c43-2b0f0b7d3c11',
          owner: 'notebooks',
          username: 'tiktok',
          relation: 'followers',
          max_records: null,
          state: 'paused',
          records: 30000,
          pages: 300,
          created_at: '2026-11-25T18:00:00.000Z',
          updated_at: '2026-11-25T21:40:00.000Z',
          resumes_at: '2026-11-26T00:00:00.000Z',
          error: 'Export jobs have made their 10000 upstream calls for today (EXPORT_DAILY_BUDGET); it resets at 00:00 UTC'
        }
      ]
    }
  )
)
export type ExportJob = Static<typeof ExportJob>

export const ExportJobList = named('ExportJobList', Type.Object({ jobs: Type.Array(ref(ExportJob), { description: 'Newest first.' }) }))
export type ExportJobList = Static<typeof ExportJobList>
