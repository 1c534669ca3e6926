import t, { type Test } from 'tap'
import { SANDBOX_CREDENTIALS } from '../../src/config.js'
import { followersPage, sandboxAccounts, sandboxCount } from '../../src/sandbox/followers.js'
import { startSandbox } from '../../src/sandbox/sandbox.js'

async function sandboxClient(t: Test) {
  const sandbox = await startSandbox(SANDBOX_CREDENTIALS)
  t.teardown(() => sandbox.close())
  const tokenReply = await fetch(`${sandbox.url}/v2/oauth/token/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_key: SANDBOX_CREDENTIALS.clientKey, client_secret: SANDBOX_CREDENTIALS.clientSecret, grant_type: 'client_credentials' })
  })
  const { access_token: token } = (await tokenReply.json()) as { access_token: string }
  const post = async (path: string, body: unknown) => {
    const reply = await fetch(sandbox.url + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body)
    })
    return { status: reply.status, json: (await reply.json()) as { data: Record<string, unknown>; error: { code: string; message: string } } }
  }
  return { sandbox, post }
}

t.test('existing users keep their followers: the example in README.md and docs/api.md is unchanged', async (t) => {
  t.same(followersPage('tiktok', 3, 1_767_225_600), {
    user_followers: [
      { username: 'hazel.willow0', display_name: 'Hazel Willow' },
      { username: 'calm.harbor1', display_name: 'Calm Harbor' },
      { username: 'brisk.pixel2', display_name: 'Brisk Pixel' }
    ],
    cursor: 1767219998,
    has_more: true
  })
})

t.test('following speaks the followers wire shape under data.user_following, and pages through a list of its own', async (t) => {
  const { sandbox, post } = await sandboxClient(t)
  const expected = sandboxAccounts('following', 'someone').map(({ username }) => username)
  t.notSame(expected, sandboxAccounts('followers', 'someone').map(({ username }) => username), 'not the followers list')
  const seen: string[] = []
  let cursor: number | undefined
  for (;;) {
    const { status, json } = await post('/v2/research/user/following/', { username: 'someone', max_count: 100, cursor })
    t.equal(status, 200)
    t.equal(json.error.code, 'ok')
    const data = json.data as { user_following: Array<{ username: string; display_name: string }>; cursor: number; has_more: boolean }
    seen.push(...data.user_following.map(({ username }) => username))
    if (!data.has_more) break
    cursor = data.cursor
  }
  t.same(seen, expected)
  t.same(sandbox.stats, { tokenExchanges: 1, followerCalls: 0, followingCalls: Math.ceil(expected.length / 100), userInfoCalls: 0 })
})

t.test('user info requires fields and answers exactly the fields asked, with counts that match the lists', async (t) => {
  const { sandbox, post } = await sandboxClient(t)
  const missing = await post('/v2/research/user/info/', { username: 'someone' })
  t.equal(missing.status, 400)
  t.equal(missing.json.error.code, 'invalid_params')
  const unknown = await post('/v2/research/user/info/?fields=display_name,shoe_size', { username: 'someone' })
  t.equal(unknown.status, 400)
  t.match(unknown.json.error.message, /shoe_size/)

  const some = await post('/v2/research/user/info/?fields=follower_count,display_name', { username: 'many1000000' })
  t.equal(some.status, 200)
  t.same(some.json.data, { follower_count: 1_000_000, display_name: 'Many1000000' })
  const all = await post(
    '/v2/research/user/info/?fields=display_name,bio_description,avatar_url,is_verified,follower_count,following_count,likes_count,video_count,bio_url',
    { username: 'someone' }
  )
  t.same(Object.keys(all.json.data).sort(), ['avatar_url', 'bio_description', 'bio_url', 'display_name', 'follower_count', 'following_count', 'is_verified', 'likes_count', 'video_count'])
  t.equal(all.json.data.follower_count, sandboxCount('followers', 'someone'))
  t.equal(all.json.data.following_count, sandboxCount('following', 'someone'))
  const again = await post(
    '/v2/research/user/info/?fields=display_name,bio_description,avatar_url,is_verified,follower_count,following_count,likes_count,video_count,bio_url',
    { username: 'someone' }
  )
  t.same(again.json.data, all.json.data, 'deterministic')
  t.equal(sandbox.stats.userInfoCalls, 5)
})

t.test('ghost, private and hidden users fail alike on every research endpoint', async (t) => {
  const { post } = await sandboxClient(t)
  for (const path of ['/v2/research/user/followers/', '/v2/research/user/following/', '/v2/research/user/info/?fields=display_name']) {
    for (const [username, message] of [
      ['ghost_x', /cannot find the user/],
      ['private_x', /is private/],
      ['hidden_x', /cannot return this user/]
    ] as const) {
      const { status, json } = await post(path, { username })
      t.equal(status, 400, `${path} ${username}`)
      t.equal(json.error.code, 'invalid_params')
      t.match(json.error.message, message)
    }
  }
})

t.test('a many<N> user has exactly N followers, paged from any cursor without building the list', async (t) => {
  const { post } = await sandboxClient(t)
  const first = await post('/v2/research/user/followers/', { username: 'many1000000', max_count: 100 })
  const data = first.json.data as { user_followers: Array<{ username: string }>; cursor: number; has_more: boolean }
  t.equal(data.user_followers.length, 100)
  t.equal(data.has_more, true)
  const second = await post('/v2/research/user/followers/', { username: 'many1000000', max_count: 100, cursor: data.cursor })
  const next = second.json.data as { user_followers: Array<{ username: string }> }
  t.equal(next.user_followers[0]?.username.replace(/^\D+/, ''), '100', 'the next page starts right after the last account')

  // The last account of a million: its follow time is what the list's formula says, and nothing follows it.
  const tail = followersPage('many1000000', 100, 1_767_225_600 - 999_999 * 10)
  t.equal(tail.user_followers.length, 1)
  t.match(tail.user_followers[0]?.username, /999999$/)
  t.equal(tail.has_more, false)
  t.equal(sandboxAccounts('followers', 'many250').length, 250)
  t.equal(new Set(sandboxAccounts('followers', 'many250').map(({ username }) => username)).size, 250, 'usernames are unique')
})

t.test('a repeats* user answers cursors that include the last account again', async (t) => {
  const first = followersPage('repeats_x', 10, 1_767_225_600)
  const second = followersPage('repeats_x', 10, first.cursor)
  t.same(second.user_followers[0], first.user_followers[9])
})
