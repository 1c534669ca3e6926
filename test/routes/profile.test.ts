import t from 'tap'
import { MockAgent } from 'undici'
import { sandboxCount } from '../../src/sandbox/followers.js'
import { buildGateway, sandboxGateway } from '../helpers/gateway.js'

const PROBLEM_JSON = 'application/problem+json; charset=utf-8'
const FIELDS = ['username', 'display_name', 'bio_description', 'avatar_url', 'is_verified', 'follower_count', 'following_count', 'likes_count', 'video_count', 'bio_url']

t.test('the profile has every field, the username lower-cased, and counts that match the lists', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  const res = await app.inject('/v1/users/Many1000000')
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
  const profile = res.json()
  t.same(Object.keys(profile), FIELDS)
  t.equal(profile.username, 'many1000000')
  t.equal(profile.follower_count, 1_000_000)
  t.equal(profile.following_count, sandboxCount('following', 'many1000000'))
  t.equal(sandbox.stats.userInfoCalls, 1)
})

t.test('the profile is cached CACHE_TTL_PROFILE_SECONDS, an hour by default', async (t) => {
  const byDefault = await sandboxGateway(t)
  const first = await byDefault.app.inject('/v1/users/someone')
  t.equal(first.headers['cache-control'], 'private, max-age=3600')
  t.equal(first.headers['x-cache'], 'MISS')
  const second = await byDefault.app.inject('/v1/users/SOMEONE')
  t.equal(second.headers['x-cache'], 'HIT')
  t.equal(second.body, first.body)
  t.equal(byDefault.sandbox.stats.userInfoCalls, 1)
  t.equal((await byDefault.app.inject({ url: '/v1/users/someone', headers: { 'if-none-match': first.headers.etag as string } })).statusCode, 304)

  const configured = await sandboxGateway(t, { CACHE_TTL_PROFILE_SECONDS: '60' })
  t.equal((await configured.app.inject('/v1/users/someone')).headers['cache-control'], 'private, max-age=60')
})

t.test('the gateway asks TikTok for every profile field and passes on no other', async (t) => {
  const agent = new MockAgent()
  agent.disableNetConnect()
  t.teardown(() => agent.close())
  const tiktok = agent.get('https://open.tiktokapis.com')
  tiktok.intercept({ path: '/v2/oauth/token/', method: 'POST' }).reply(200, { access_token: 'clt.x', expires_in: 7200, token_type: 'Bearer' })
  const info = { display_name: 'A', bio_description: 'b', avatar_url: 'u', is_verified: false, follower_count: 1, following_count: 2, likes_count: 3, video_count: 4, bio_url: 'v' }
  tiktok
    .intercept({ path: `/v2/research/user/info/?fields=${FIELDS.slice(1).join(',')}`, method: 'POST', body: JSON.stringify({ username: 'someone' }) })
    .reply(200, { data: { ...info, region: 'FR' }, error: { code: 'ok', message: '', log_id: 'L' } })
  const { app } = await buildGateway(t, { TIKTOK_CLIENT_KEY: 'k', TIKTOK_CLIENT_SECRET: 's', GATEWAY_ALLOW_ANONYMOUS: 'true' }, { dispatcher: agent })
  const res = await app.inject('/v1/users/someone')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { username: 'someone', ...info })
  agent.assertNoPendingInterceptors()
})

t.test('profile: unknown users are 404, private and unreturnable users 403, bad usernames 400', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  for (const [username, status, kind] of [
    ['ghost_user', 404, 'user-not-found'],
    ['private_user', 403, 'user-private'],
    ['hidden_user', 403, 'user-unavailable'],
    ['bad-name', 400, 'invalid-request']
  ] as const) {
    const res = await app.inject(`/v1/users/${username}`)
    t.equal(res.statusCode, status, username)
    t.equal(res.headers['content-type'], PROBLEM_JSON)
    t.match(res.json(), { type: `urn:tiktok-research-gateway:problem:${kind}`, instance: `/v1/users/${username}` })
  }
  t.equal(sandbox.stats.userInfoCalls, 3)
  t.equal((await app.inject('/v1/users/someone?fields=display_name')).statusCode, 400, 'no query parameters')
})
