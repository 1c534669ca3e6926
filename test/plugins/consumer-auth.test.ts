import t from 'tap'
import { GATEWAY_API_KEYS, KEYS, sandboxGateway } from '../helpers/gateway.js'

const URL = '/v1/users/someone/followers'

t.test('with consumer keys configured, a request without a key is a 401 problem and costs no upstream call', async (t) => {
  const { app, sandbox } = await sandboxGateway(t, { GATEWAY_API_KEYS })
  const res = await app.inject(URL)
  t.equal(res.statusCode, 401)
  t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.equal(res.headers['www-authenticate'], 'Bearer realm="tiktok-research-gateway"')
  t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:unauthorized', status: 401, detail: /Authorization: Bearer/ })
  t.equal(sandbox.stats.followerCalls, 0)
})

t.test('a key is accepted as a bearer token or as X-API-Key', async (t) => {
  const { app } = await sandboxGateway(t, { GATEWAY_API_KEYS })
  t.equal((await app.inject({ url: URL, headers: { authorization: `Bearer ${KEYS.alice}` } })).statusCode, 200)
  t.equal((await app.inject({ url: URL, headers: { authorization: `bearer ${KEYS.bob}` } })).statusCode, 200)
  t.equal((await app.inject({ url: URL, headers: { 'x-api-key': KEYS.bob } })).statusCode, 200)
})

t.test('an unknown key, a near miss or another scheme is refused', async (t) => {
  const { app } = await sandboxGateway(t, { GATEWAY_API_KEYS, GATEWAY_ALLOW_ANONYMOUS: 'true' })
  for (const headers of [
    { authorization: 'Bearer not-a-key' },
    { authorization: `Bearer ${KEYS.alice}x` },
    { authorization: `Basic ${Buffer.from(`alice:${KEYS.alice}`).toString('base64')}` },
    { 'x-api-key': KEYS.alice.slice(0, -1) }
  ]) {
    const res = await app.inject({ url: URL, headers })
    t.equal(res.statusCode, 401, JSON.stringify(headers))
    t.notMatch(res.body, KEYS.alice)
  }
})

t.test('a bearer key wins over X-API-Key; an Authorization of another scheme (a proxy\'s) or an empty one leaves X-API-Key to name the consumer', async (t) => {
  const { app, logs } = await sandboxGateway(t, { GATEWAY_API_KEYS })
  for (const headers of [
    { authorization: `Bearer ${KEYS.alice}`, 'x-api-key': 'not-a-key' },
    { authorization: 'Basic cHJveHk6cHc=', 'x-api-key': KEYS.bob },
    { authorization: '', 'x-api-key': KEYS.bob }
  ]) {
    t.equal((await app.inject({ url: URL, headers })).statusCode, 200, JSON.stringify(headers))
  }
  const completed = logs.map((line) => JSON.parse(line)).filter((entry) => entry.msg === 'request')
  t.same(completed.map((entry) => entry.consumer), ['alice', 'bob', 'bob'])
  const basicAlone = await app.inject({ url: URL, headers: { authorization: 'Basic cHJveHk6cHc=' } })
  t.equal(basicAlone.statusCode, 401)
  t.match(basicAlone.json(), { detail: /must be "Bearer <key>"/ })
})

t.test('anonymous access, when allowed, still accepts and names keyed consumers', async (t) => {
  const { app, logs } = await sandboxGateway(t, { GATEWAY_API_KEYS, GATEWAY_ALLOW_ANONYMOUS: 'true' })
  t.equal((await app.inject(URL)).statusCode, 200)
  t.equal((await app.inject({ url: URL, headers: { 'x-api-key': KEYS.bob } })).statusCode, 200)
  const completed = logs.map((line) => JSON.parse(line)).filter((entry) => entry.msg === 'request')
  t.same(completed.map((entry) => entry.consumer), ['anonymous', 'bob'], 'the consumer name is on the request log')
})

t.test('operational routes need no key', async (t) => {
  const { app } = await sandboxGateway(t, { GATEWAY_API_KEYS })
  for (const url of ['/healthz', '/readyz', '/openapi.json', '/docs/']) {
    t.equal((await app.inject(url)).statusCode, 200, url)
  }
})
