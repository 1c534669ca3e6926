import { once } from 'node:events'
import type { Server } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { PROBLEM_CONTENT_TYPE } from '../src/plugins/problem-details.js'
import { GATEWAY_API_KEYS, KEYS, sandboxGateway } from './helpers/gateway.js'

/** The bound on receiving a request that docs/api.md states (problem 408), headers and body alike. */
const DOCUMENTED_TIMEOUT_MS = 60_000

/** Node's connection checks in the production wiring, scaled down so that a test waits a fraction of a second, not a minute. */
const SHORT = { timeoutMs: 300, checkEveryMs: 20 }

/** Node's own property, which its types know only as a createServer() option. */
const checked = (app: FastifyInstance) => app.server as Server & { connectionsCheckingInterval: number }

function shortenTimeouts(app: FastifyInstance): void {
  app.server.headersTimeout = SHORT.timeoutMs
  app.server.requestTimeout = SHORT.timeoutMs
  // Read when the server starts listening.
  checked(app).connectionsCheckingInterval = SHORT.checkEveryMs
}

/** Sends `bytes` on a fresh connection to `app` and resolves, once the server closes it, with what came back and how long that took. */
async function stall(t: Test, app: FastifyInstance, bytes: string): Promise<{ received: string; ms: number }> {
  const socket: Socket = connect((app.server.address() as AddressInfo).port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  await once(socket, 'connect')
  const started = performance.now()
  let received = ''
  socket.setEncoding('latin1').on('data', (chunk: string) => (received += chunk))
  socket.write(bytes)
  await once(socket, 'close')
  return { received, ms: performance.now() - started }
}

function check408(t: Test, received: string): void {
  const [head = '', body = ''] = received.split('\r\n\r\n')
  t.match(head, /^HTTP\/1\.1 408 /)
  t.match(head, new RegExp(`\r\ncontent-type: ${PROBLEM_CONTENT_TYPE.replace('+', '\\+')}\r\n`, 'i'))
  t.match(JSON.parse(body), { type: 'urn:tiktok-research-gateway:problem:request-timeout', status: 408 })
}

t.test('the server bounds receiving a request as docs/api.md says: headers and the whole request within 60 s, checked every second', async (t) => {
  const { app } = await sandboxGateway(t, { GATEWAY_API_KEYS })
  t.equal(app.server.headersTimeout, DOCUMENTED_TIMEOUT_MS)
  t.equal(app.server.requestTimeout, DOCUMENTED_TIMEOUT_MS, 'the body too, not only the headers')
  // Node's default of 30 s answered a stalled client anywhere between 60 and 90 s.
  t.equal(checked(app).connectionsCheckingInterval, 1_000)
})

t.test('headers that never complete get the 408 problem at the headers timeout, and the connection closes', async (t) => {
  const { app } = await sandboxGateway(t, { GATEWAY_API_KEYS })
  shortenTimeouts(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { received, ms } = await stall(t, app, 'GET /healthz HTTP/1.1\r\nHost: x\r\n')
  check408(t, received)
  t.ok(ms >= SHORT.timeoutMs - SHORT.checkEveryMs, `not before the timeout (${Math.round(ms)} ms)`)
})

t.test('an authenticated request whose body never completes gets the 408 problem at the request timeout, and starts nothing', async (t) => {
  const { app, sandbox } = await sandboxGateway(t, { GATEWAY_API_KEYS })
  shortenTimeouts(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { received, ms } = await stall(
    t,
    app,
    `POST /v1/exports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEYS.alice}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"username":`
  )
  check408(t, received)
  t.ok(ms >= SHORT.timeoutMs - SHORT.checkEveryMs, `not before the timeout (${Math.round(ms)} ms)`)
  t.same((await app.inject({ url: '/v1/exports', headers: { authorization: `Bearer ${KEYS.alice}` } })).json(), { jobs: [] })
  t.equal(sandbox.stats.followerCalls, 0)
})

t.test('an export streaming for longer than the request timeout is not cut: the timeout covers receiving the request only', async (t) => {
  const { app } = await sandboxGateway(t, { GATEWAY_API_KEYS }, { faults: { latencyMs: 50 } })
  shortenTimeouts(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { received, ms } = await stall(
    t,
    app,
    `GET /v1/users/many2000/followers/export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEYS.alice}\r\nConnection: close\r\n\r\n`
  )
  t.match(received, /^HTTP\/1\.1 200 [^]*"complete":true/)
  t.ok(ms > 2 * SHORT.timeoutMs, `streamed past the timeout (${Math.round(ms)} ms)`)
})

t.test('a request timeout while the answer is already under way cuts the connection without writing a 408 into that answer', async (t) => {
  const { app } = await sandboxGateway(t, { GATEWAY_API_KEYS }, { faults: { latencyMs: 50 } })
  shortenTimeouts(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  // A GET's body is not read: its export starts streaming while the request still waits for its last bytes.
  const { received } = await stall(
    t,
    app,
    `GET /v1/users/many2000/followers/export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEYS.alice}\r\nContent-Length: 10\r\n\r\n`
  )
  t.match(received, /^HTTP\/1\.1 200 /)
  t.notMatch(received, /HTTP\/1\.1 408/)
})
