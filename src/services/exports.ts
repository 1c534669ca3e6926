import { Readable } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import { traitsOf } from '../errors.js'
import type { ExportEnd, ExportReason, RecordFormat } from '../schemas/export.js'
import type { CacheOutcome } from '../stores/page-store.js'
import type { Relation } from '../schemas/export-jobs.js'
import { ListWalk } from './list-walk.js'
import { HEADER, recordLine } from './record-format.js'
import { EXPORT_PAGE_SIZE, type AccountPage, type Caller, type Pages } from './pages.js'

export interface PageRequest {
  maxCount: number
  /** Unix seconds; omitted asks for the newest accounts. */
  cursor?: number
}

/**
 * Reads a page of the list being exported, through the page cache, coalescing and quota. `first`
 * tells the first page (its failure is the request's, and the request deadline applies) from later
 * ones (each bounded by its own upstream timeout only, so a long healthy export is not cut short).
 */
export type ReadPage = (request: PageRequest, first: boolean) => Promise<AccountPage>

export interface ExportQuery {
  /** Resume from an earlier export's `resume_cursor`. */
  cursor?: number
  /** At most this many accounts. */
  limit?: number
  format: RecordFormat
}

/** An export as it streams; `end` is its end state once the last record is out (a CSV's trailers carry it). */
export interface ExportReadable extends Readable {
  readonly end: ExportEnd | undefined
}

/**
 * Exports of users' lists, read page by page through the page cache, coalescing and quota, so that
 * a second export of the same list costs no quota and pages a consumer paged through are reused.
 */
export class Exports {
  readonly #pages: Pages
  readonly #onPage: (outcome: CacheOutcome) => void
  readonly #streaming = new Set<ExportReadable>()

  /** `onPage` is told how each page was served (for the cache metrics). */
  constructor(pages: Pages, onPage: (outcome: CacheOutcome) => void) {
    this.#pages = pages
    this.#onPage = onPage
  }

  /** Resolves once the first page is read (or rejects with its failure): see openExport. */
  async open(relation: Relation, username: string, query: ExportQuery, caller: Caller): Promise<ExportReadable> {
    const readPage: ReadPage = async ({ maxCount, cursor }, first) => {
      const page = await this.#pages.accounts(relation, { username, maxCount, cursor }, caller, { deadline: first })
      this.#onPage(page.outcome)
      return page
    }
    const stream = await openExport(readPage, query, caller.log)
    this.#streaming.add(stream)
    stream.once('close', () => this.#streaming.delete(stream))
    return stream
  }

  /**
   * Cuts the exports still streaming, before the stores and the upstream client close under them
   * (a page being read would fail, and read as TikTok's failure). Called once the server has closed
   * every connection: their readers are gone.
   */
  close(): void {
    for (const stream of this.#streaming) stream.destroy()
  }
}

/**
 * Opens an export of a whole list: one line per account, newest first, then (in NDJSON) an end line.
 * The first page is read before this resolves, so that an unknown user, a private one or a spent
 * budget is the caller's ordinary error rather than a 200 that says nothing. The rest is read one
 * page at a time, only as the consumer takes what was read.
 */
export async function openExport(readPage: ReadPage, query: ExportQuery, log: FastifyBaseLogger): Promise<ExportReadable> {
  const request = { maxCount: pageSize(query.limit), cursor: query.cursor }
  const first = await readPage(request, true)
  return new ExportStream(readPage, query, request, first, log)
}

const pageSize = (wanted: number | undefined): number => Math.min(EXPORT_PAGE_SIZE, wanted ?? EXPORT_PAGE_SIZE)

class ExportStream extends Readable implements ExportReadable {
  readonly #readPage: ReadPage
  readonly #limit: number | undefined
  readonly #format: RecordFormat
  /** Written before the first record: the CSV header row. */
  #header: string
  #end: ExportEnd | undefined
  readonly #log: FastifyBaseLogger
  /** The request of the page being read, or of the page just sent while nothing is read. */
  #request: PageRequest
  #firstPage: AccountPage | undefined
  /** Usernames of the page sent last: TikTok may repeat accounts across a page boundary. */
  #previous = new Set<string>()
  /** How many accounts the last boundary repeated: the next page asks for that many more than it needs. */
  #overlap = 0
  #records = 0
  #pages = 0
  #reading: Promise<void> | undefined
  readonly #walk = new ListWalk()

  constructor(readPage: ReadPage, { limit, format }: ExportQuery, request: PageRequest, first: AccountPage, log: FastifyBaseLogger) {
    // A buffer of nothing: the next page is read only once the consumer took the last one.
    super({ highWaterMark: 0 })
    this.#readPage = readPage
    this.#limit = limit
    this.#format = format
    this.#header = HEADER[format]
    this.#request = request
    this.#firstPage = first
    this.#log = log
  }

  get end(): ExportEnd | undefined {
    return this.#end
  }

  // Readable calls this again only after a push; a step that pushes at once may still be settling then.
  override _read(): void {
    const reading = this.#step()
    this.#reading = reading
    void reading.finally(() => {
      if (this.#reading === reading) this.#reading = undefined
    })
  }

  /** Waits for a page being read, so that no upstream call outlives the stream. */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    void (this.#reading ?? Promise.resolve()).then(() => callback(error))
  }

  async #step(): Promise<void> {
    for (;;) {
      let page = this.#firstPage
      this.#firstPage = undefined
      if (page === undefined) {
        try {
          page = await this.#readPage(this.#request, false)
        } catch (err) {
          if (this.destroyed) return
          // A spent budget (the team's, the consumer's, TikTok's) waits for 00:00 UTC; anything else is a failure.
          const reason: ExportReason = traitsOf(err).job === 'pause' ? 'quota' : 'upstream_error'
          this.#log.warn({ err, reason, cursor: this.#request.cursor }, 'export stopped early')
          this.#finish('', false, reason, this.#request.cursor ?? null)
          return
        }
        if (this.destroyed) return
      }
      this.#pages++

      const fresh = page.accounts.filter((account) => !this.#previous.has(account.username))
      this.#overlap = page.accounts.length - fresh.length
      const wanted = this.#limit === undefined ? fresh.length : this.#limit - this.#records
      const sent = fresh.slice(0, wanted)
      this.#records += sent.length
      this.#previous = new Set(page.accounts.map((account) => account.username))
      const lines = sent.map((account) => recordLine(this.#format, account)).join('')

      if (sent.length < fresh.length) {
        // TikTok repeated fewer accounts than the last boundary did, so this page holds more than
        // were wanted: its cursor would skip the ones held back; resuming at its start repeats some instead.
        this.#finish(lines, false, 'limit', this.#request.cursor ?? null)
        return
      }
      if (!page.hasMore) {
        this.#finish(lines, true, 'done', null)
        return
      }
      if (this.#limit !== undefined && this.#records === this.#limit) {
        this.#finish(lines, false, 'limit', page.cursor)
        return
      }
      const stuck = this.#walk.afterPage(fresh.length, page.cursor)
      if (stuck !== undefined) {
        this.#log.warn({ err: stuck, cursor: page.cursor }, 'export stopped early')
        this.#finish(lines, false, 'upstream_error', page.cursor)
        return
      }
      this.#request = { maxCount: pageSize(this.#limit === undefined ? undefined : this.#limit - this.#records + this.#overlap), cursor: page.cursor }
      // A page of nothing new gives the reader nothing to take, so nothing would ask for the next page: read it now.
      if (lines !== '') {
        this.#push(lines)
        return
      }
    }
  }

  #finish(lines: string, complete: boolean, reason: ExportReason, resumeCursor: number | null): void {
    this.#end = { export: { complete, reason, records: this.#records, pages: this.#pages, resume_cursor: resumeCursor } }
    // A CSV stays data rows only: its end state goes in the trailers.
    this.#push(this.#format === 'ndjson' ? lines + JSON.stringify(this.#end) + '\n' : lines)
    this.push(null)
  }

  #push(text: string): void {
    this.push(this.#header + text)
    this.#header = ''
  }
}
