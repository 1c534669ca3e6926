import { once } from 'node:events'
import type { Readable } from 'node:stream'
import pino from 'pino'
import t from 'tap'
import { failure } from '../../src/errors.js'
import { followersPage, sandboxFollowers } from '../../src/sandbox/followers.js'
import { parse } from 'csv-parse/sync'
import { openExport, type PageRequest, type ReadPage } from '../../src/services/exports.js'

const NOW_SECONDS = 1_767_225_600
const log = pino({ level: 'silent' })

/** Pages of a sandbox user's followers, counting the reads; `fail` decides whether read n (from 1) throws. */
function sandboxPages(username: string, fail?: (n: number) => Error | undefined) {
  const requests: PageRequest[] = []
  const readPage: ReadPage = async (request) => {
    requests.push(request)
    const error = fail?.(requests.length)
    if (error) throw error
    const data = followersPage(username, request.maxCount, request.cursor ?? NOW_SECONDS)
    return { accounts: data.user_followers, cursor: data.cursor, hasMore: data.has_more, outcome: 'miss' as const }
  }
  return { readPage, requests }
}

interface Line {
  username?: string
  export?: { complete: boolean; reason: string; records: number; pages: number; resume_cursor: number | null }
}

async function lines(stream: Readable): Promise<{ accounts: string[]; end: NonNullable<Line['export']> }> {
  let text = ''
  for await (const chunk of stream) text += chunk
  t.ok(text.endsWith('\n'), 'the stream ends with a newline')
  const parsed = text.trimEnd().split('\n').map((line) => JSON.parse(line) as Line)
  const end = parsed.pop()!.export!
  t.ok(parsed.every((line) => line.export === undefined), 'one end line, last')
  return { accounts: parsed.map((line) => line.username!), end }
}

/** The next chunk the stream gives, waiting for it as a reader would. */
async function take(stream: Readable): Promise<Buffer> {
  let chunk: Buffer | null
  while ((chunk = stream.read()) === null) await once(stream, 'readable')
  return chunk
}

const usernames = (username: string) => sandboxFollowers(username).map((follower) => follower.username)

t.test('an export streams every account once, newest first, then a complete end line', async (t) => {
  const { readPage, requests } = sandboxPages('someone')
  const expected = usernames('someone')
  const { accounts, end } = await lines(await openExport(readPage, { format: 'ndjson' }, log))
  t.same(accounts, expected)
  const pages = Math.ceil(expected.length / 100)
  t.same(end, { complete: true, reason: 'done', records: expected.length, pages, resume_cursor: null })
  t.ok(requests.every((request) => request.maxCount === 100), 'every page at max_count=100')
})

t.test('accounts TikTok repeats across a page boundary are sent once', async (t) => {
  const { readPage } = sandboxPages('repeats_someone')
  const { accounts, end } = await lines(await openExport(readPage, { format: 'ndjson' }, log))
  t.same(accounts, usernames('repeats_someone'))
  t.equal(end.records, accounts.length)
  t.equal(end.complete, true)
})

for (const username of ['someone', 'repeats_someone']) {
  t.test(`${username}: an export with a limit, resumed at its resume_cursor, covers the whole list without a gap`, async (t) => {
    const expected = usernames(username)
    const union: string[] = []
    let cursor: number | undefined
    for (const limit of [1, 37, 100, 101, 250]) {
      const { readPage, requests } = sandboxPages(username)
      const { accounts, end } = await lines(await openExport(readPage, { cursor, limit, format: 'ndjson' }, log))
      t.equal(new Set(accounts).size, accounts.length, 'no account twice within a stream')
      t.ok(accounts.length <= limit, 'never more than the limit')
      // Across a resume TikTok's cursor decides: a repeats* user sends its boundary account again.
      union.push(...accounts.filter((account) => union.at(-1) !== account))
      if (end.complete) {
        t.same(end, { complete: true, reason: 'done', records: accounts.length, pages: requests.length, resume_cursor: null })
        break
      }
      t.same(end, { complete: false, reason: 'limit', records: limit, pages: requests.length, resume_cursor: end.resume_cursor })
      t.ok(requests.at(-1)!.maxCount <= 100)
      cursor = end.resume_cursor!
    }
    t.same(union, expected, 'nothing missing, nothing twice')
  })
}

t.test('a limit ends the stream with the last page asked at max_count = the accounts still wanted', async (t) => {
  const { readPage, requests } = sandboxPages('someone')
  const { accounts, end } = await lines(await openExport(readPage, { limit: 130, format: 'ndjson' }, log))
  t.equal(accounts.length, 130)
  t.same(
    requests.map((request) => request.maxCount),
    [100, 30]
  )
  t.equal(end.resume_cursor, followersPage('someone', 130, NOW_SECONDS).cursor, "TikTok's cursor right after the 130th account")
})

t.test('a spent budget mid-stream ends with reason quota and the cursor after the last page sent', async (t) => {
  for (const kind of ['GW_CONSUMER_BUDGET_EXHAUSTED', 'GW_DAILY_QUOTA_EXHAUSTED'] as const) {
    const { readPage } = sandboxPages('someone', (n) => (n === 2 ? failure(kind, 'spent') : undefined))
    const { accounts, end } = await lines(await openExport(readPage, { format: 'ndjson' }, log))
    t.same(accounts, usernames('someone').slice(0, 100))
    t.same(end, { complete: false, reason: 'quota', records: 100, pages: 1, resume_cursor: followersPage('someone', 100, NOW_SECONDS).cursor })
  }
})

t.test('TikTok failing mid-stream ends with reason upstream_error', async (t) => {
  const { readPage } = sandboxPages('someone', (n) => (n === 2 ? failure('GW_UPSTREAM_ERROR', 'boom') : undefined))
  const { end } = await lines(await openExport(readPage, { format: 'ndjson' }, log))
  t.match(end, { complete: false, reason: 'upstream_error', records: 100, pages: 1, resume_cursor: Number })
})

t.test('a first page that fails rejects the open: no stream, the caller answers a problem', async (t) => {
  const { readPage } = sandboxPages('someone', () => failure('GW_USER_NOT_FOUND', 'no such user'))
  await t.rejects(openExport(readPage, { format: 'ndjson' }, log), { code: 'GW_USER_NOT_FOUND' })
})

t.test('backpressure: the next page is read only once the reader took the page before', async (t) => {
  const { readPage, requests } = sandboxPages('many5000')
  const stream = await openExport(readPage, { format: 'ndjson' }, log)
  t.equal(requests.length, 1, 'opening reads the first page only')
  for (let taken = 1; taken <= 5; taken++) {
    const chunk = await take(stream)
    t.equal(chunk.toString().split('\n').length - 1, 100, 'one page per chunk')
    t.ok(requests.length <= taken + 1, `${taken} pages taken, ${requests.length} read: at most one ahead`)
  }
  stream.destroy()
  await once(stream, 'close')
  t.ok(requests.length <= 6)
})

t.test('destroying the stream while a page is being read waits for it and reads no further page', async (t) => {
  let release: (() => void) | undefined
  const { readPage: sandboxRead, requests } = sandboxPages('many5000')
  const readPage: ReadPage = async (request, first) => {
    if (!first) await new Promise<void>((resolve) => (release = resolve))
    return sandboxRead(request, first)
  }
  const stream = await openExport(readPage, { format: 'ndjson' }, log)
  await take(stream)
  if (release === undefined) stream.read()
  t.equal(requests.length, 1, 'the second page is being read')
  const closed = once(stream, 'close')
  stream.destroy()
  release!()
  await closed
  t.equal(requests.length, 2)
  t.equal(stream.read(), null, 'nothing was pushed after the destroy')
})

t.test('a list that keeps answering pages without a new account ends the export after a few pages, as a job does', async (t) => {
  let reads = 0
  const readPage: ReadPage = async () => {
    reads++
    return { accounts: [{ username: 'same', display_name: 'Same' }], cursor: 5, hasMore: true, outcome: 'hit' }
  }
  const { accounts, end } = await lines(await openExport(readPage, { format: 'ndjson' }, log))
  t.same(accounts, ['same'], 'the one account, once')
  t.match(end, { complete: false, reason: 'upstream_error', resume_cursor: 5 })
  t.equal(reads, 4, 'the first page, then three that added nothing')
})

t.test('one page of nothing new between pages of new accounts does not end an export', async (t) => {
  const pages = [['a', 'b'], [], ['c']]
  const readPage: ReadPage = async ({ cursor }) => {
    const index = cursor === undefined ? 0 : 3 - cursor
    return { accounts: (pages[index] ?? []).map((username) => ({ username, display_name: username })), cursor: 2 - index, hasMore: index < 2, outcome: 'miss' }
  }
  const { accounts, end } = await lines(await openExport(readPage, { format: 'ndjson' }, log))
  t.same(accounts, ['a', 'b', 'c'])
  t.match(end, { complete: true, reason: 'done' })
})

t.test('a CSV export is a header row and one RFC 4180 row per account, the same accounts as NDJSON; its end state is on the stream, not in the rows', async (t) => {
  const ndjson = await lines(await openExport(sandboxPages('someone').readPage, { limit: 150, format: 'ndjson' }, log))
  const stream = await openExport(sandboxPages('someone').readPage, { limit: 150, format: 'csv' }, log)
  let text = ''
  for await (const chunk of stream) text += chunk
  const rows: Array<{ username: string }> = parse(text, { columns: true })
  t.ok(text.startsWith('username,display_name\r\n'))
  t.same(
    rows.map((row) => row.username),
    ndjson.accounts
  )
  t.same(stream.end?.export, ndjson.end)
})

t.test('CSV fields with a quote, a comma or a line break are quoted and round-trip through a CSV parser', async (t) => {
  const awkward = [
    { username: 'plain', display_name: 'Jane Doe' },
    { username: 'comma', display_name: 'Doe, Jane' },
    { username: 'quote', display_name: 'The "Real" Jane' },
    { username: 'lines', display_name: 'two\r\nlines\nand\rmore' },
    { username: 'script', display_name: 'naïve ✓ 😀 =1+1' }
  ]
  const readPage: ReadPage = async () => ({ accounts: awkward, cursor: 1, hasMore: false, outcome: 'miss' })
  let text = ''
  for await (const chunk of await openExport(readPage, { format: 'csv' }, log)) text += chunk
  t.match(text, /\r\ncomma,"Doe, Jane"\r\nquote,"The ""Real"" Jane"\r\n/)
  t.same(parse(text, { columns: true }), awkward)
})
