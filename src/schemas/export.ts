import { Type, type Static } from 'typebox'
import { Follower } from './followers.js'
import { named, ref } from './named.js'
import { AccountLimit, Cursor, QueryString } from './query.js'

/** How account records are written: NDJSON lines, or CSV rows. */
export const RECORD_FORMATS = ['ndjson', 'csv'] as const
export type RecordFormat = (typeof RECORD_FORMATS)[number]

const Format = Type.Optional(
  Type.Enum(RECORD_FORMATS, { description: '`csv` for CSV rows, as `Accept: text/csv` asks; NDJSON by default (and with `Accept: application/x-ndjson`).' })
)

/** The CSV of account records, as documented beside the NDJSON. */
export const CSV_RECORDS = {
  'text/csv': {
    schema: Type.String({
      description:
        'A header row `username,display_name`, then one row per account; RFC 4180 (CRLF, fields with a quote, comma or line ' +
        'break quoted), UTF-8 without a byte order mark. Sent as an attachment, so that a browser saves it as a file.'
    }),
    example: 'username,display_name\r\njane.doe,Jane Doe\r\nbob,"Bob, the ""builder"""\r\n'
  }
}

export const RecordsQuerystring = QueryString({ format: Format })

export const ExportQuerystring = QueryString({
  format: Format,
  cursor: Type.Optional({
    ...Cursor('accounts that followed'),
    description: 'Resume an export: the `resume_cursor` of its end line. Omit to start from the newest account.'
  }),
  limit: Type.Optional(AccountLimit('At most this many accounts; the end line then says `reason: "limit"`.'))
})

export const EXPORT_REASONS = ['done', 'limit', 'quota', 'upstream_error'] as const
export type ExportReason = (typeof EXPORT_REASONS)[number]

/** The last line of every export stream. */
export const ExportEnd = named(
  'ExportEnd',
  Type.Object(
    {
      export: Type.Object(
        {
          complete: Type.Boolean({ description: 'True only when TikTok said there is nothing more (`has_more: false`).' }),
          reason: Type.Enum(EXPORT_REASONS, {
            description:
              "done: the whole list was sent; limit: `limit` accounts were sent; quota: a daily budget (the team's, yours or " +
              "TikTok's) ran out; upstream_error: TikTok failed after retries and no cached copy could stand in."
          }),
          records: Type.Integer({ minimum: 0, description: 'Account lines sent in this stream.' }),
          pages: Type.Integer({ minimum: 0, description: 'Pages read (from the cache or from TikTok).' }),
          resume_cursor: Type.Union([Type.Integer(), Type.Null()], {
            description: 'Pass as `cursor` to continue right after the last account sent; null when complete.'
          })
        },
        { additionalProperties: false }
      )
    },
    { additionalProperties: false, examples: [{ export: { complete: false, reason: 'limit', records: 2, pages: 1, resume_cursor: 1767225597 } }] }
  )
)
export type ExportEnd = Static<typeof ExportEnd>

/** One line of an export: an account, or the end line. */
export const ExportLine = Type.Union([ref(Follower), ref(ExportEnd)], {
  description: 'Each line of the stream is one JSON value: an account, newest first, and last of all the end line.'
})

/** A line of each kind: a body is account lines, newest first, then one end line. */
export const EXPORT_LINE_EXAMPLES = {
  account: { summary: 'An account (one line each)', value: { username: 'jane.doe', display_name: 'Jane Doe' } },
  end: {
    summary: 'The end line, always last: here after `limit=2`',
    value: { export: { complete: false, reason: 'limit', records: 2, pages: 1, resume_cursor: 1767225597 } }
  },
  complete: { summary: 'The end line of a whole list', value: { export: { complete: true, reason: 'done', records: 1843, pages: 19, resume_cursor: null } } }
}
