import t from 'tap'
import { sandboxFollowers } from '../../src/sandbox/followers.js'
import { sandboxGateway } from '../helpers/gateway.js'

const PROBLEM_JSON = 'application/problem+json; charset=utf-8'

t.test('pages through every follower by following Link rel="next" to has_more=false', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  const expected = sandboxFollowers('someone').map((f) => f.username)
  const seen: string[] = []
  let url: string | undefined = '/v1/users/someone/followers?max_count=100'
  let pages = 0
  while (url !== undefined) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 200)
    const body = res.json()
    seen.push(...body.followers.map((f: { username: string }) => f.username))
    pages++
    const link = res.headers.link as string | undefined
    t.equal(link !== undefined, body.has_more, 'a Link header exactly while has_more')
    if (link !== undefined) t.equal(link, `</v1/users/someone/followers?max_count=100&cursor=${body.cursor}>; rel="next"`)
    url = link ? /^<([^>]+)>/.exec(link)![1] : undefined
  }
  t.same(seen, expected, 'every follower once, newest first')
  t.equal(pages, Math.ceil(expected.length / 100))
  t.equal(sandbox.stats.followerCalls, pages, 'one upstream call per page')
})

t.test('a repeated request is a cache hit that makes no upstream call', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  const first = await app.inject('/v1/users/someone/followers?max_count=5')
  const second = await app.inject('/v1/users/someone/followers?max_count=5')
  t.equal(first.headers['x-cache'], 'MISS')
  t.equal(second.headers['x-cache'], 'HIT')
  t.equal(second.body, first.body)
  t.equal(second.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(second.headers.etag, first.headers.etag)
  t.equal(sandbox.stats.followerCalls, 1)
  t.equal(first.json().followers.length, 5)
})

t.test('default max_count and explicit max_count=20 share one cache entry; usernames are case-insensitive', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  const a = await app.inject('/v1/users/SomeOne/followers')
  const b = await app.inject('/v1/users/someone/followers?max_count=20')
  t.equal(a.json().username, 'someone')
  t.equal(a.json().followers.length, 20)
  t.equal(b.headers['x-cache'], 'HIT')
  t.equal(sandbox.stats.followerCalls, 1)
})

t.test('50 concurrent identical misses make exactly one upstream call and one token exchange', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  const responses = await Promise.all(Array.from({ length: 50 }, () => app.inject('/v1/users/crowd/followers?max_count=10')))
  t.ok(responses.every((res) => res.statusCode === 200))
  t.equal(new Set(responses.map((res) => res.body)).size, 1, 'every caller gets the same page')
  t.equal(sandbox.stats.followerCalls, 1)
  t.equal(sandbox.stats.tokenExchanges, 1)
})

t.test('the newest page is cached briefly, a past cursor for long', async (t) => {
  const { app } = await sandboxGateway(t, { CACHE_TTL_LATEST_SECONDS: '120', CACHE_TTL_HISTORY_SECONDS: '7200' })
  const latest = await app.inject('/v1/users/someone/followers')
  t.match(latest.headers['cache-control'], /^private, max-age=1[12]\d$/)
  const history = await app.inject(`/v1/users/someone/followers?cursor=${latest.json().cursor}`)
  t.match(history.headers['cache-control'], /^private, max-age=7[12]\d\d$/)
  const future = await app.inject(`/v1/users/someone/followers?cursor=${Math.floor(Date.now() / 1000) + 3600}`)
  t.match(future.headers['cache-control'], /^private, max-age=1[12]\d$/, 'a cursor not yet past is still "newest"')
})

t.test('If-None-Match with the ETag answers 304 without a body', async (t) => {
  const { app } = await sandboxGateway(t)
  const first = await app.inject('/v1/users/someone/followers')
  const etag = first.headers.etag as string
  t.match(etag, /^"[\w-]+"$/)
  for (const ifNoneMatch of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
    const res = await app.inject({ url: '/v1/users/someone/followers', headers: { 'if-none-match': ifNoneMatch } })
    t.equal(res.statusCode, 304, ifNoneMatch)
    t.equal(res.body, '')
    t.equal(res.headers['content-length'], undefined, 'RFC 9110: no content-length for a body a 304 does not carry')
    t.equal(res.headers['content-type'], undefined)
    t.equal(res.headers.etag, etag)
  }
  const changed = await app.inject({ url: '/v1/users/someone/followers', headers: { 'if-none-match': '"stale"' } })
  t.equal(changed.statusCode, 200)
})

t.test('bad input is a 400 problem and never reaches the upstream', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  const cases: Array<[string, RegExp]> = [
    ['/v1/users/ends.with.dot./followers', /username/],
    ['/v1/users/has-dash/followers', /username/],
    ['/v1/users/a%2Fb/followers', /username/],
    [`/v1/users/${'a'.repeat(31)}/followers`, /username/],
    ['/v1/users/%F0%9F%98%80/followers', /username/],
    ['/v1/users/someone/followers?max_count=0', /max_count/],
    ['/v1/users/someone/followers?max_count=101', /max_count/],
    ['/v1/users/someone/followers?max_count=ten', /max_count/],
    ['/v1/users/someone/followers?max_count=2.5', /max_count/],
    ['/v1/users/someone/followers?cursor=-1', /cursor/],
    ['/v1/users/someone/followers?cursor=yesterday', /cursor/],
    ['/v1/users/someone/followers?maxcount=10', /'maxcount'/],
    ['/v1/users/someone/followers?cursor=4102444801', /cursor/]
  ]
  for (const [url, mentions] of cases) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 400, url)
    t.equal(res.headers['content-type'], PROBLEM_JSON)
    const problem = res.json()
    t.match(problem, { type: 'urn:tiktok-research-gateway:problem:invalid-request', title: 'Invalid request', status: 400 })
    t.match(problem.detail, mentions, url)
  }
  t.equal(sandbox.stats.followerCalls, 0)
  t.equal(sandbox.stats.tokenExchanges, 0)
})

t.test('max_count and cursor accept plain decimal integers only; every other spelling is a 400 naming the parameter', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  const spellings = ['Infinity', '-Infinity', 'NaN', '1e309', '1e99', '1e2', '9007199254740993', '0x10', '0b1', '0o7', '20.0', '5.', '+5', '-0', '05', '', ' 5', '5 ', '\t5', '5\t', '5\n', '1_0', '２']
  for (const name of ['max_count', 'cursor']) {
    for (const value of spellings) {
      const url = `/v1/users/someone/followers?${new URLSearchParams({ [name]: value }).toString()}`
      const res = await app.inject(url)
      t.equal(res.statusCode, 400, url)
      t.equal(res.headers['content-type'], PROBLEM_JSON)
      t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:invalid-request', detail: new RegExp(`querystring\\.${name} `) }, url)
    }
    const repeated = await app.inject(`/v1/users/someone/followers?${name}=1&${name}=2`)
    t.equal(repeated.statusCode, 400, `${name} given twice`)
  }
  t.equal(sandbox.stats.followerCalls, 0, 'none reached the upstream')
  t.equal(sandbox.stats.tokenExchanges, 0)

  for (const url of ['?max_count=1', '?max_count=100', '?cursor=0', '?cursor=4102444800', '?max_count=7&cursor=1735689000']) {
    t.equal((await app.inject(`/v1/users/someone/followers${url}`)).statusCode, 200, url)
  }
  const page = (await app.inject('/v1/users/someone/followers?max_count=7')).json()
  t.equal(page.followers.length, 7, 'the checked text is converted to the number it spells')
})

t.test('unknown, private and unreturnable users map to 404 and 403 with the upstream log_id', async (t) => {
  const { app } = await sandboxGateway(t)
  const cases = [
    ['ghost_user', 404, 'user-not-found'],
    ['private_user', 403, 'user-private'],
    ['hidden_user', 403, 'user-unavailable']
  ] as const
  for (const [username, status, kind] of cases) {
    const res = await app.inject(`/v1/users/${username}/followers`)
    t.equal(res.statusCode, status, username)
    t.equal(res.headers['content-type'], PROBLEM_JSON)
    t.equal(res.headers['cache-control'], 'no-store')
    t.match(res.json(), {
      type: `urn:tiktok-research-gateway:problem:${kind}`,
      status,
      code: 'invalid_params',
      log_id: /^\d{14}[0-9A-F]{16}$/,
      instance: `/v1/users/${username}/followers`,
      request_id: res.headers['x-request-id']
    })
  }
})

t.test('an unknown route is a 404 problem', async (t) => {
  const { app } = await sandboxGateway(t)
  const res = await app.inject('/v1/users/someone/likes?api_key=secret')
  t.equal(res.statusCode, 404)
  t.equal(res.headers['content-type'], PROBLEM_JSON)
  t.match(res.json(), { status: 404, title: 'Not Found', detail: /GET \/v1\/users\/someone\/likes;/, instance: '/v1/users/someone/likes' })
})

t.test('a caller-supplied X-Request-Id is kept only when it is at most 128 characters of [A-Za-z0-9._:-]', async (t) => {
  const { app, logs } = await sandboxGateway(t)
  for (const kept of ['trace-abc', 'a', 'svc:pipeline.run-42_x', 'x'.repeat(128)]) {
    const res = await app.inject({ url: '/v1/users/someone/followers', headers: { 'x-request-id': kept } })
    t.equal(res.headers['x-request-id'], kept)
    t.equal(res.json().followers.length, 20)
  }
  const replaced = ['x'.repeat(129), 'k'.repeat(12 * 1024), 'has space', 'semi;colon', '<script>', 'naïve', 'a/b', '"quoted"']
  for (const sent of replaced) {
    const res = await app.inject({ url: '/v1/users/no-such-route!', headers: { 'x-request-id': sent } })
    t.match(res.headers['x-request-id'], /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, sent.slice(0, 20))
    t.equal(res.json().request_id, res.headers['x-request-id'])
  }
  const empty = await app.inject({ url: '/healthz', headers: { 'x-request-id': '' } })
  t.match(empty.headers['x-request-id'], /^[0-9a-f-]{36}$/)
  const made = await Promise.all(Array.from({ length: 50 }, () => app.inject('/healthz')))
  t.equal(new Set(made.map((res) => res.headers['x-request-id'])).size, 50, 'every id the gateway makes is its own')
  t.notOk(logs.some((line) => line.includes('k'.repeat(200)) || line.includes('<script>')), 'a refused id is never logged')
})
