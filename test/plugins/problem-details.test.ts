import t from 'tap'
import { sandboxGateway } from '../helpers/gateway.js'

const PROBLEM_JSON = 'application/problem+json; charset=utf-8'

t.test('a URL the router refuses (bad percent-encoding, an over-long segment) is a 400 problem with a request id', async (t) => {
  const { app, sandbox, logs } = await sandboxGateway(t)
  for (const url of ['/v1/users/%zz/followers', '/v1/users/%E0%A4%A/followers', '/%', `/v1/users/${'a'.repeat(101)}/followers`]) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 400, url)
    t.equal(res.headers['content-type'], PROBLEM_JSON, url)
    t.equal(res.headers['cache-control'], 'no-store')
    t.match(res.json(), {
      type: 'urn:tiktok-research-gateway:problem:invalid-request',
      title: 'Invalid request',
      status: 400,
      detail: /URL path/,
      request_id: res.headers['x-request-id']
    })
    t.match(res.headers['x-request-id'], /^[0-9a-f-]{36}$/)
    t.ok(logs.some((line) => line.includes(`"reqId":"${String(res.headers['x-request-id'])}"`) && line.includes('invalid-request')), 'logged under its id')
  }
  t.equal(sandbox.stats.followerCalls, 0)
})

t.test('a malformed or empty JSON body, or one shorter than its Content-Length, is a 400 invalid-request problem with a request id, and starts nothing', async (t) => {
  const { app } = await sandboxGateway(t)
  const JSON_BODY = { 'content-type': 'application/json' }
  for (const [payload, headers] of [
    ['{"username":', JSON_BODY],
    ['', JSON_BODY],
    ['tiktok', JSON_BODY],
    ['{"__proto__":{"admin":true},"username":"tiktok","relation":"followers"}', JSON_BODY],
    ['{"username":"tiktok","relation":"followers"}', { ...JSON_BODY, 'content-length': '3' }]
  ] as const) {
    const res = await app.inject({ method: 'POST', url: '/v1/exports', headers, payload })
    t.equal(res.statusCode, 400, payload)
    t.equal(res.headers['content-type'], PROBLEM_JSON)
    t.match(res.json(), {
      type: 'urn:tiktok-research-gateway:problem:invalid-request',
      title: 'Invalid request',
      status: 400,
      detail: /^The body /,
      instance: '/v1/exports',
      request_id: res.headers['x-request-id']
    })
  }
  t.same((await app.inject('/v1/exports')).json(), { jobs: [] })
})
