import t from 'tap'
import { GATEWAY_API_KEYS, KEYS, sandboxGateway } from '../helpers/gateway.js'

const ADMIN_KEY = 'ops-admin-key-0123456789'
const TOKEN = 'metrics-token-0123456789abcdef'
const KEYED = { GATEWAY_API_KEYS, GATEWAY_ADMIN_KEYS: `ops:${ADMIN_KEY}` }
const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` })
const CONSUMER_SERIES = 'gateway_quota_used{scope="consumer",consumer="alice"} 1'
const TEAM_SERIES = 'gateway_quota_used{scope="team",consumer=""} 1'

t.test('without METRICS_TOKEN /metrics is open with the team quota and no consumer name; an admin key sees each consumer', async (t) => {
  const { app } = await sandboxGateway(t, KEYED)
  t.equal((await app.inject({ url: '/v1/users/someone/followers', headers: bearer(KEYS.alice) })).statusCode, 200)
  for (const headers of [{}, bearer(KEYS.alice), { 'x-api-key': KEYS.bob }]) {
    const res = await app.inject({ url: '/metrics', headers })
    t.equal(res.statusCode, 200)
    t.ok(res.body.includes(TEAM_SERIES), 'the team quota')
    t.ok(res.body.includes('gateway_cache_requests_total{outcome="miss"} 1'), 'the other metrics')
    for (const name of ['alice', 'bob', 'ops', 'scope="consumer"']) t.notOk(res.body.includes(name), `no ${name}`)
  }
  for (const headers of [bearer(ADMIN_KEY), { 'x-api-key': ADMIN_KEY }]) {
    const res = await app.inject({ url: '/metrics', headers })
    t.equal(res.statusCode, 200)
    t.ok(res.body.includes(TEAM_SERIES))
    t.ok(res.body.includes(CONSUMER_SERIES), 'an admin sees each consumer')
    t.ok(res.body.includes('gateway_quota_remaining{scope="consumer",consumer="bob"} 5000'))
  }
  t.equal((await app.inject({ url: '/metrics', headers: bearer('not-a-key') })).statusCode, 401, 'a wrong key is refused, not ignored')
})

t.test('/metrics takes no query parameters: an unknown one is a 400 problem, as on the page routes', async (t) => {
  const { app } = await sandboxGateway(t)
  const res = await app.inject('/metrics?name=gateway_quota_used')
  t.equal(res.statusCode, 400)
  t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:invalid-request', detail: "querystring must NOT have additional properties: 'name'" })
})

t.test('with METRICS_TOKEN /metrics needs it or an admin key (else a 401 problem) and then shows each consumer', async (t) => {
  const { app, logs } = await sandboxGateway(t, { ...KEYED, METRICS_TOKEN: TOKEN })
  t.equal((await app.inject({ url: '/v1/users/someone/followers', headers: bearer(KEYS.alice) })).statusCode, 200)
  for (const headers of [{}, bearer(KEYS.alice), bearer(`${TOKEN}x`), { 'x-api-key': TOKEN }, { authorization: `Basic ${TOKEN}` }, { authorization: 'Basic cHJveHk6cHc=', 'x-api-key': TOKEN }]) {
    const res = await app.inject({ url: '/metrics', headers })
    t.equal(res.statusCode, 401, JSON.stringify(headers))
    t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
    t.match(res.headers['www-authenticate'], /^Bearer /)
    t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:unauthorized', status: 401 })
    t.notOk(res.body.includes('alice'))
  }
  for (const headers of [bearer(TOKEN), bearer(ADMIN_KEY)]) {
    const res = await app.inject({ url: '/metrics', headers })
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^text\/plain/)
    t.ok(res.body.includes(TEAM_SERIES))
    t.ok(res.body.includes(CONSUMER_SERIES))
  }
  t.notOk(logs.some((line) => line.includes(TOKEN)), 'the token is never logged')
})
