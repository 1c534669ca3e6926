import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getDefaultHighWaterMark, type Readable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { parse as parseCsv } from 'csv-parse/sync'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { followersPage, sandboxAccounts, sandboxFollowers } from '../../src/sandbox/followers.js'
import { MAX_CURSOR } from '../../src/schemas/query.js'
import { GATEWAY_API_KEYS, KEYS, sandboxGateway } from '../helpers/gateway.js'

const NDJSON = 'application/x-ndjson'
const PROBLEM_JSON = 'application/problem+json; charset=utf-8'

interface End {
  complete: boolean
  reason: string
  records: number
  pages: number
  resume_cursor: number | null
}

/** An NDJSON export body: its accounts and its end line, checking that the end line comes once, last. */
function parse(t: Test, body: string): { accounts: Array<{ username: string; display_name: string }>; end: End } {
  t.ok(body.endsWith('\n'), 'every line ends with a newline')
  const lines = body.trimEnd().split('\n').map((line) => JSON.parse(line))
  const last = lines.pop()
  t.same(Object.keys(last), ['export'], 'the last line is the end line')
  t.ok(lines.every((line) => 'username' in line && 'display_name' in line && Object.keys(line).length === 2), 'every other line is an account')
  return { accounts: lines, end: last.export }
}

/** The NDJSON bytes of the first `pages` pages of a user's followers export. */
function exportBytes(username: string, pages: number): number {
  let bytes = 0
  let cursor = MAX_CURSOR
  for (let i = 0; i < pages; i++) {
    const page = followersPage(username, 100, cursor)
    for (const account of page.user_followers) bytes += JSON.stringify(account).length + 1
    cursor = page.cursor
  }
  return bytes
}

const usernames = (accounts: Array<{ username: string }>) => accounts.map(({ username }) => username)

/** The first export stream the gateway sends, to watch it from the test. */
function exportStream(app: FastifyInstance): Promise<Readable> {
  return new Promise((resolve) => {
    app.addHook('onSend', async (_request, _reply, payload) => {
      if (typeof (payload as Readable | undefined)?.pipe === 'function') resolve(payload as Readable)
    })
  })
}

/** Sends a GET over a raw socket, with nothing read but what the test asks for. */
function rawGet(socket: Socket, path: string): void {
  socket.write(`GET ${path} HTTP/1.1\r\nHost: gateway\r\n\r\n`)
}

t.test('a followers export streams every follower once, newest first, as NDJSON, and ends complete', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  const res = await app.inject('/v1/users/SomeOne/followers/export')
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], NDJSON)
  t.equal(res.headers['cache-control'], 'no-store')
  const { accounts, end } = parse(t, res.body)
  const expected = sandboxFollowers('someone')
  t.same(accounts, expected.map(({ username, display_name }) => ({ username, display_name })))
  const pages = Math.ceil(expected.length / 100)
  t.same(end, { complete: true, reason: 'done', records: expected.length, pages, resume_cursor: null })
  t.equal(sandbox.stats.followerCalls, pages, 'one upstream call per page of 100')
})

t.test('a following export streams the accounts the user follows', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  const res = await app.inject('/v1/users/someone/following/export')
  const { accounts, end } = parse(t, res.body)
  t.same(usernames(accounts), usernames(sandboxAccounts('following', 'someone')))
  t.equal(end.complete, true)
  t.equal(sandbox.stats.followingCalls, end.pages)
  t.equal(sandbox.stats.followerCalls, 0)
})

t.test('accounts TikTok repeats at a page boundary appear once in the stream', async (t) => {
  const { app } = await sandboxGateway(t)
  const { accounts, end } = parse(t, (await app.inject('/v1/users/repeats_many/followers/export')).body)
  t.same(usernames(accounts), usernames(sandboxFollowers('repeats_many')))
  t.equal(end.records, accounts.length)
})

t.test('an export with a limit, resumed at its resume_cursor again and again, yields the whole list exactly', async (t) => {
  const { app } = await sandboxGateway(t)
  for (const username of ['many1000', 'repeats_many']) {
    const expected = usernames(sandboxFollowers(username))
    const union: string[] = []
    let query = ''
    for (const limit of [1, 99, 100, 150, 333, 1000]) {
      const res = await app.inject(`/v1/users/${username}/followers/export?limit=${limit}${query}`)
      t.equal(res.statusCode, 200)
      const { accounts, end } = parse(t, res.body)
      const names = usernames(accounts)
      t.equal(new Set(names).size, names.length, `${username}: no account twice within a stream`)
      t.ok(names.length <= limit, 'at most limit accounts')
      // Across a resume TikTok's cursor decides: a repeats* user's boundary account comes again.
      union.push(...names.filter((name) => name !== union.at(-1)))
      if (end.complete) {
        t.equal(end.reason, 'done')
        t.equal(end.resume_cursor, null)
        break
      }
      t.match(end, { complete: false, reason: 'limit', records: limit, resume_cursor: Number })
      query = `&cursor=${end.resume_cursor}`
    }
    t.same(union, expected, `${username}: the union is the full list, nothing missing`)
  }
})

t.test('a second export of the same list, and an export after paging through it, spend no quota', async (t) => {
  const { app, sandbox } = await sandboxGateway(t, { GATEWAY_API_KEYS })
  const alice = { authorization: `Bearer ${KEYS.alice}` }
  const bob = { authorization: `Bearer ${KEYS.bob}` }
  const first = await app.inject({ url: '/v1/users/someone/followers/export', headers: alice })
  const calls = sandbox.stats.followerCalls
  const second = await app.inject({ url: '/v1/users/someone/followers/export', headers: bob })
  t.equal(second.body, first.body)
  t.equal(sandbox.stats.followerCalls, calls, 'no upstream call')
  const quota = (await app.inject({ url: '/v1/quota', headers: bob })).json()
  t.equal(quota.consumers.bob.used, 0, "bob's budget untouched")
  t.equal(quota.team.used, calls)

  let url: string | undefined = '/v1/users/other/followers?max_count=100'
  while (url !== undefined) {
    const link: string = ((await app.inject({ url, headers: alice })).headers.link as string | undefined) ?? ''
    url = /^<([^>]+)>/.exec(link)?.[1]
  }
  const before = sandbox.stats.followerCalls
  const exported = parse(t, (await app.inject({ url: '/v1/users/other/followers/export', headers: bob })).body)
  t.equal(exported.end.complete, true)
  t.equal(sandbox.stats.followerCalls, before, 'the pages alice paged through served the export')
})

t.test("a consumer's budget spent mid-stream ends it with reason quota; another consumer resumes where it stopped", async (t) => {
  const { app } = await sandboxGateway(t, { GATEWAY_API_KEYS, CONSUMER_DAILY_BUDGETS: 'alice:3' })
  const first = await app.inject({ url: '/v1/users/many1000/followers/export', headers: { authorization: `Bearer ${KEYS.alice}` } })
  t.equal(first.statusCode, 200)
  const stopped = parse(t, first.body)
  t.match(stopped.end, { complete: false, reason: 'quota', records: 300, pages: 3, resume_cursor: Number })
  const rest = parse(t, (await app.inject({ url: `/v1/users/many1000/followers/export?cursor=${stopped.end.resume_cursor}`, headers: { authorization: `Bearer ${KEYS.bob}` } })).body)
  t.equal(rest.end.complete, true)
  t.same([...usernames(stopped.accounts), ...usernames(rest.accounts)], usernames(sandboxFollowers('many1000')))
})

t.test("TikTok's quota spent mid-stream ends it with reason quota and a resume_cursor", async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  sandbox.events.on('followers', () => sandbox.stats.followerCalls === 2 && sandbox.setFaults({ quotaExhausted: true }))
  const { accounts, end } = parse(t, (await app.inject('/v1/users/many1000/followers/export')).body)
  t.equal(accounts.length, 100)
  t.match(end, { complete: false, reason: 'quota', records: 100, pages: 1, resume_cursor: Number })
})

t.test('TikTok failing mid-stream, with no cached page to stand in, ends it with reason upstream_error', async (t) => {
  const { app, sandbox } = await sandboxGateway(t, { UPSTREAM_RETRIES: '1' })
  sandbox.events.on('followers', () => sandbox.stats.followerCalls === 3 && sandbox.setFaults({ errorRate: 1 }))
  const res = await app.inject('/v1/users/many1000/followers/export')
  t.equal(res.statusCode, 200)
  const { end } = parse(t, res.body)
  t.match(end, { complete: false, reason: 'upstream_error', records: 200, pages: 2, resume_cursor: Number })
  t.equal(sandbox.stats.followerCalls, 4, 'the failed page was retried once, then the stream ended')
})

t.test('a first page that fails is the ordinary problem response, not a 200', async (t) => {
  const { app } = await sandboxGateway(t, { GATEWAY_API_KEYS, CONSUMER_DAILY_BUDGETS: 'bob:0' })
  const alice = { authorization: `Bearer ${KEYS.alice}` }
  const cases = [
    ['/v1/users/ghost_user/followers/export', alice, 404, 'user-not-found'],
    ['/v1/users/private_user/following/export', alice, 403, 'user-private'],
    ['/v1/users/hidden_user/followers/export', alice, 403, 'user-unavailable'],
    ['/v1/users/someone/followers/export', { authorization: `Bearer ${KEYS.bob}` }, 429, 'consumer-budget-exhausted'],
    ['/v1/users/someone/followers/export', {}, 401, 'unauthorized']
  ] as const
  for (const [url, headers, status, kind] of cases) {
    const res = await app.inject({ url, headers })
    t.equal(res.statusCode, status, url)
    t.equal(res.headers['content-type'], PROBLEM_JSON)
    t.match(res.json(), { type: `urn:tiktok-research-gateway:problem:${kind}`, status, instance: url })
  }
})

t.test('bad export queries are 400 problems that reach no upstream', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  for (const query of ['limit=0', 'limit=1000000001', `limit=${'9'.repeat(31)}`, 'limit=1.5', 'limit=01', 'limit=-3', 'limit=ten', 'cursor=-1', 'cursor=1e9', 'max_count=100']) {
    const res = await app.inject(`/v1/users/someone/followers/export?${query}`)
    t.equal(res.statusCode, 400, query)
    t.equal(res.headers['content-type'], PROBLEM_JSON)
  }
  t.equal(sandbox.stats.followerCalls, 0)
})

t.test('the request deadline does not cut a healthy export short', async (t) => {
  const { app, sandbox } = await sandboxGateway(t, { REQUEST_DEADLINE_MS: '400' }, { faults: { latencyMs: 100 } })
  const res = await app.inject('/v1/users/many1000/followers/export')
  const { end } = parse(t, res.body)
  t.same(end, { complete: true, reason: 'done', records: 1000, pages: 10, resume_cursor: null }, 'ten pages of 100 ms each, past a 400 ms deadline')
  t.equal(sandbox.stats.followerCalls, 10)
})

t.test('a client that disconnects stops the export: no upstream call after the stream closed, and one access line says so', async (t) => {
  const { app, sandbox, logs } = await sandboxGateway(t)
  const sent = exportStream(app)
  const url = new URL(await app.listen({ host: '127.0.0.1', port: 0 }))
  const socket = connect(Number(url.port), url.hostname)
  rawGet(socket, '/v1/users/many1000000/followers/export')
  await once(socket, 'data')
  socket.destroy()
  const stream = await sent
  if (!stream.destroyed) await once(stream, 'close')
  const calls = sandbox.stats.followerCalls
  t.ok(calls < 1000, `${calls} of 10000 pages read before the disconnect`)
  // The stream closes only once a page being read has settled, and a closed stream reads no page.
  await app.inject('/healthz')
  t.equal(sandbox.stats.followerCalls, calls)
  const lines = logs.map((line) => JSON.parse(line)).filter((line) => line.url === '/v1/users/many1000000/followers/export')
  t.match(lines, [{ msg: 'request', method: 'GET', status: 200, ms: Number, aborted: true }])
})

t.test('a slow reader holds the export back: pages read from TikTok stay within what the client received, the socket buffers and one page', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  const sent = exportStream(app)
  // A Unix socket, whose kernel buffer is one fixed size (net.core.wmem_default), unlike loopback TCP's autotuned ones.
  const dir = await mkdtemp(join(tmpdir(), 'gateway-export-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'gateway.sock')
  await app.listen({ path })
  const socket = connect(path)
  t.teardown(() => socket.destroy())
  rawGet(socket, '/v1/users/many1000000/followers/export')

  let received = 0
  socket.on('data', (chunk: Buffer) => (received += chunk.length))
  await once(socket, 'data')
  // What may sit between the export and the reader: the kernel's socket buffer, and the response's and the socket's own
  // (Node's default high-water mark each: 16 KiB on Node 20, 64 KiB from Node 22).
  const inTransit = Number(await readFile('/proc/sys/net/core/wmem_default', 'utf8')) + 2 * getDefaultHighWaterMark(false)
  for (let round = 0; round < 3; round++) {
    socket.pause()
    const stream = await sent
    // The gateway is blocked: the socket took all it can.
    if (stream.readableFlowing !== false) await once(stream, 'pause')
    const pagesRead = sandbox.stats.followerCalls
    t.ok(exportBytes('many1000000', pagesRead - 1) <= received + inTransit, `round ${round}: ${pagesRead} pages read for ${received} bytes received`)
    const target = received + 300 * 1024
    socket.resume()
    while (received < target) await once(socket, 'data')
  }
  socket.destroy()
  const stream = await sent
  if (!stream.destroyed) await once(stream, 'close')
  t.ok(sandbox.stats.followerCalls < 1000, 'far from the whole list')
})

t.test('HEAD on an export spends nothing: there is no HEAD route to stream the list for a body that is never sent (a 405)', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  for (const relation of ['followers', 'following']) {
    const res = await app.inject({ method: 'HEAD', url: `/v1/users/many5000/${relation}/export` })
    t.equal(res.statusCode, 405, relation)
    t.equal(res.headers.allow, 'GET', 'the export has GET only')
  }
  t.equal(sandbox.stats.followerCalls + sandbox.stats.followingCalls, 0)
})

t.test('format=csv, or Accept: text/csv, streams the same accounts as CSV rows, with the end state in HTTP trailers a Node client reads', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ndjson = parse(t, (await app.inject('/v1/users/someone/followers/export?limit=150')).body)
  const calls = sandbox.stats.followerCalls
  for (const [query, headers] of [
    ['?limit=150&format=csv', {}],
    ['?limit=150', { accept: 'text/csv' }],
    ['?limit=150', { accept: 'application/x-ndjson;q=0.5, text/csv' }]
  ] as const) {
    const res = await request(`${base}/v1/users/someone/followers/export${query}`, { headers })
    const body = await res.body.text()
    t.equal(res.statusCode, 200)
    t.equal(res.headers['content-type'], 'text/csv; charset=utf-8')
    t.equal(res.headers['content-disposition'], 'attachment; filename="someone-followers.csv"')
    t.equal(res.headers.vary, 'accept')
    t.same(
      parseCsv<{ username: string }>(body, { columns: true }).map(({ username }) => username),
      usernames(ndjson.accounts),
      'pure data rows: the accounts, no end line'
    )
    t.same(res.trailers, {
      'x-export-complete': 'false',
      'x-export-reason': 'limit',
      'x-export-records': '150',
      'x-export-resume-cursor': String(ndjson.end.resume_cursor)
    })
  }
  t.equal(sandbox.stats.followerCalls, calls, 'CSV reads the pages the NDJSON export cached')
  const whole = await request(`${base}/v1/users/someone/followers/export?format=csv`)
  await whole.body.text()
  t.match(whole.trailers, { 'x-export-complete': 'true', 'x-export-reason': 'done', 'x-export-resume-cursor': '' }, 'a script tells a complete file by its trailer')
  t.equal((await app.inject({ url: '/v1/users/someone/followers/export?limit=1', headers: { accept: 'application/json' } })).headers['content-type'], NDJSON, 'NDJSON unless CSV is asked for')
})

t.test('format takes ndjson or csv only: anything else is a 400 problem', async (t) => {
  const { app } = await sandboxGateway(t)
  const res = await app.inject('/v1/users/someone/followers/export?format=xlsx')
  t.equal(res.statusCode, 400)
  t.equal(res.headers['content-type'], PROBLEM_JSON)
})
