import t from 'tap'
import { sandboxAccounts } from '../../src/sandbox/followers.js'
import { sandboxGateway } from '../helpers/gateway.js'

const PROBLEM_JSON = 'application/problem+json; charset=utf-8'

t.test('pages through every followed account by following Link rel="next" to has_more=false', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  const expected = sandboxAccounts('following', 'someone').map(({ username, display_name }) => ({ username, display_name }))
  const seen: unknown[] = []
  let url: string | undefined = '/v1/users/SomeOne/following?max_count=100'
  while (url !== undefined) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.equal(body.username, 'someone')
    seen.push(...body.following)
    const link = res.headers.link as string | undefined
    t.equal(link !== undefined, body.has_more, 'a Link header exactly while has_more')
    if (link !== undefined) t.equal(link, `</v1/users/someone/following?max_count=100&cursor=${body.cursor}>; rel="next"`)
    url = link ? /^<([^>]+)>/.exec(link)![1] : undefined
  }
  t.same(seen, expected, 'every account once, newest first')
  t.equal(sandbox.stats.followingCalls, Math.ceil(expected.length / 100))
  t.equal(sandbox.stats.followerCalls, 0)
})

t.test('following pages are cached with the followers headers and TTL rules, apart from the followers pages', async (t) => {
  const { app, sandbox } = await sandboxGateway(t, { CACHE_TTL_LATEST_SECONDS: '120', CACHE_TTL_HISTORY_SECONDS: '7200' })
  const first = await app.inject('/v1/users/someone/following?max_count=5')
  t.equal(first.headers['x-cache'], 'MISS')
  t.match(first.headers.etag, /^"[\w-]+"$/)
  t.match(first.headers['cache-control'], /^private, max-age=1[12]\d$/)
  const hit = await app.inject('/v1/users/someone/following?max_count=5')
  t.equal(hit.headers['x-cache'], 'HIT')
  t.notOk('age' in hit.headers, 'Age only on STALE')
  t.equal(hit.body, first.body)
  const notModified = await app.inject({ url: '/v1/users/someone/following?max_count=5', headers: { 'if-none-match': first.headers.etag as string } })
  t.equal(notModified.statusCode, 304)
  const history = await app.inject(`/v1/users/someone/following?max_count=5&cursor=${first.json().cursor}`)
  t.match(history.headers['cache-control'], /^private, max-age=7[12]\d\d$/)
  const followers = await app.inject('/v1/users/someone/followers?max_count=5')
  t.equal(followers.headers['x-cache'], 'MISS', 'not the following page')
  t.equal(sandbox.stats.followingCalls, 2)
})

t.test('following: unknown, private and unreturnable users are 404 and 403 problems; bad queries are 400s', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  for (const [username, status, kind] of [
    ['ghost_user', 404, 'user-not-found'],
    ['private_user', 403, 'user-private'],
    ['hidden_user', 403, 'user-unavailable']
  ] as const) {
    const res = await app.inject(`/v1/users/${username}/following`)
    t.equal(res.statusCode, status)
    t.equal(res.headers['content-type'], PROBLEM_JSON)
    t.match(res.json(), { type: `urn:tiktok-research-gateway:problem:${kind}`, code: 'invalid_params' })
  }
  const calls = sandbox.stats.followingCalls
  for (const query of ['max_count=0', 'max_count=101', 'cursor=-1', 'cursor=1e3', 'limit=5']) {
    t.equal((await app.inject(`/v1/users/someone/following?${query}`)).statusCode, 400, query)
  }
  t.equal(sandbox.stats.followingCalls, calls)
})
