import { once } from 'node:events'
import { connect, type AddressInfo, type Socket } from 'node:net'
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

/** Reads everything a client socket receives until the server closes the connection. */
async function readAll(socket: Socket): Promise<string> {
  let received = ''
  for await (const chunk of socket) received += String(chunk)
  return received
}

t.test('a request Node refuses before Fastify sees it (headers too large, not HTTP, too slow) is a problem with a request id, and the connection closes', async (t) => {
  const { app, logs } = await sandboxGateway(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const SECRET = 'a-key-in-a-refused-request'
  const check = (received: string, status: number, type: string) => {
    const [lines = '', body = ''] = received.split('\r\n\r\n')
    const head = `${lines}\r\n`
    t.match(head, new RegExp(`^HTTP/1.1 ${status} `), type)
    t.match(head, /\r\ncontent-type: application\/problem\+json; charset=utf-8\r\n/i)
    t.match(head, /\r\nconnection: close\r\n/i)
    t.match(head, /\r\ncache-control: no-store\r\n/i)
    const id = /\r\nx-request-id: ([0-9a-f-]{36})\r\n/i.exec(head)?.[1]
    t.ok(id, 'a generated request id')
    t.match(JSON.parse(body), { type: `urn:tiktok-research-gateway:problem:${type}`, title: String, status, detail: String, request_id: id })
    t.ok(logs.some((line) => line.includes(`"reqId":"${id}"`) && line.includes(type)), 'logged under its id')
  }
  for (const [raw, status, type] of [
    [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-API-Key: ${SECRET}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'headers-too-large'],
    ['GARBAGE\r\n\r\n', 400, 'invalid-request'],
    ['GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 400, 'invalid-request']
  ] as const) {
    const client = connect(port, '127.0.0.1')
    client.end(raw)
    check(await readAll(client), status, type)
  }
  // Node raises its headers timeout after 60 s (test/slow-clients.test.ts lets it fire); the error is emitted here on a connection that is still sending.
  const client = connect(port, '127.0.0.1')
  const [serverSide] = (await once(app.server, 'connection')) as [Socket]
  client.write('GET /healthz HTTP/1.1\r\n')
  app.server.emit('clientError', Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), serverSide)
  check(await readAll(client), 408, 'request-timeout')
  t.notOk(logs.some((line) => line.includes(SECRET) || line.includes('rawPacket')), "the refused request's bytes are never logged")
})

t.test('an HTTP/1.1 request without Host is a 400 problem with its request id and access line, from both entry points; HTTP/1.0 needs none', async (t) => {
  const { app, logs } = await sandboxGateway(t, { GATEWAY_ALLOW_ANONYMOUS: 'true' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const send = async (raw: string) => {
    const client = connect(port, '127.0.0.1')
    client.end(raw)
    return readAll(client)
  }
  // Asked twice with a Host: a URL the early path of fresh hits then answers.
  for (let i = 0; i < 2; i++) await send('GET /v1/users/hosted/followers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  for (const url of ['/healthz', '/v1/users/hosted/followers']) {
    logs.length = 0
    const [head = '', body = ''] = (await send(`GET ${url} HTTP/1.1\r\nConnection: close\r\n\r\n`)).split('\r\n\r\n')
    t.match(head, /^HTTP\/1\.1 400 /, url)
    t.match(head, /\r\ncontent-type: application\/problem\+json; charset=utf-8\r\n/i)
    const id = /\r\nx-request-id: ([0-9a-f-]{36})\r\n/i.exec(head)?.[1]
    t.match(JSON.parse(body), { type: 'urn:tiktok-research-gateway:problem:invalid-request', detail: /Host/, request_id: id })
    t.ok(logs.some((line) => line.includes(`"reqId":"${id}"`) && line.includes('"status":400')), 'an access line')
  }
  t.match(await send('GET /healthz HTTP/1.0\r\n\r\n'), /^HTTP\/1\.1 200 /)
})

t.test('a method a path does not have is a 405 problem with Allow listing the methods it has; a path with none is still a 404', async (t) => {
  const { app, sandbox } = await sandboxGateway(t)
  for (const [method, url, allow] of [
    ['POST', '/v1/users/tiktok/followers', 'GET, HEAD'],
    ['DELETE', '/v1/users/tiktok', 'GET, HEAD'],
    ['PUT', '/v1/exports', 'GET, HEAD, POST'],
    ['PATCH', '/v1/exports/c0a8e0f2-2f4b-4a55-9c43-2b0f0b7d3c11', 'GET, HEAD, DELETE'],
    ['POST', '/healthz', 'GET, HEAD']
  ] as const) {
    const res = await app.inject({ method, url: `${url}?max_count=5` })
    t.equal(res.statusCode, 405, `${method} ${url}`)
    t.equal(res.headers.allow, allow)
    t.equal(res.headers['content-type'], PROBLEM_JSON)
    t.match(res.json(), {
      type: 'urn:tiktok-research-gateway:problem:method-not-allowed',
      title: 'Method not allowed',
      status: 405,
      detail: `${method} is not a method of ${url}; it has ${allow}`,
      instance: url,
      request_id: res.headers['x-request-id']
    })
  }
  for (const [method, url] of [
    ['POST', '/no/such/route'],
    ['GET', '/docs/static/no-such-file.js']
  ] as const) {
    const res = await app.inject({ method, url })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.equal(res.headers.allow, undefined)
    t.match(res.json(), { type: 'about:blank', status: 404, request_id: res.headers['x-request-id'] })
  }
  t.equal(sandbox.stats.followerCalls, 0)
})
