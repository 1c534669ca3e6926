import type { RecordFormat } from '../schemas/export.js'
import type { Account } from '../schemas/followers.js'

/**
 * How account records are written: NDJSON (one JSON object a line), or CSV for spreadsheets, R and
 * pandas (RFC 4180: a header row, CRLF, fields quoted when they hold a quote, comma or line break).
 * Both are streamed line by line, so a CSV costs the memory an NDJSON does.
 */
export const MEDIA_TYPE: Record<RecordFormat, string> = { ndjson: 'application/x-ndjson', csv: 'text/csv; charset=utf-8' }

/** What a format writes before the first record. */
export const HEADER: Record<RecordFormat, string> = { ndjson: '', csv: 'username,display_name\r\n' }

const csvField = (value: string): string => (/[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value)

/** One account as a line of `format`. */
export function recordLine(format: RecordFormat, { username, display_name }: Account): string {
  return format === 'csv' ? `${csvField(username)},${csvField(display_name)}\r\n` : JSON.stringify({ username, display_name }) + '\n'
}

/** A job's stored record lines (NDJSON, as the store keeps them) as text of `format`. */
export async function* recordText(batches: AsyncIterable<string[]>, format: RecordFormat): AsyncIterable<string> {
  if (HEADER[format] !== '') yield HEADER[format]
  for await (const lines of batches) {
    yield format === 'ndjson' ? lines.join('\n') + '\n' : lines.map((line) => recordLine(format, JSON.parse(line) as Account)).join('')
  }
}
