import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect, type AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { once } from 'node:events'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { sandboxGateway } from './helpers/gateway.js'

t.test('a request answered while the app closes ends its kept-alive connection, so the close does not wait for the client', async (t) => {
  const { app, sandbox } = await sandboxGateway(t, { GATEWAY_ALLOW_ANONYMOUS: 'true' }, { faults: { latencyMs: 300 } })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const agent = new Agent({ keepAliveTimeout: 60_000 })
  t.teardown(() => agent.close())
  const inFlight = request(`${base}/v1/users/closing/followers`, { dispatcher: agent })
  await once(sandbox.events, 'followers')
  const closed = app.close()
  const res = await inFlight
  t.equal(res.statusCode, 200)
  t.equal(res.headers.connection, 'close')
  await res.body.dump()
  await closed
})

/** The port `app` now listens on. */
async function listeningPort(app: Awaited<ReturnType<typeof sandboxGateway>>['app']): Promise<number> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  return (app.server.address() as AddressInfo).port
}

/** A raw connection to `port`: what it received so far, and a promise that settles when the server ends it. */
async function rawConnection(t: Test, port: number) {
  const socket = connect(port, '127.0.0.1').on('error', () => {})
  t.teardown(() => socket.destroy())
  await once(socket, 'connect')
  let received = ''
  socket.setEncoding('latin1').on('data', (chunk: string) => (received += chunk))
  return { socket, received: () => received, ended: once(socket, 'close') }
}

const EXPORT = 'GET /v1/users/many2000/followers/export HTTP/1.1\r\nHost: x\r\n\r\n'
const HIT = 'GET /v1/users/hot/followers HTTP/1.1\r\nHost: x\r\n\r\n'

t.test('a kept-alive connection whose answer was under way at the close ends with that answer', async (t) => {
  const { app } = await sandboxGateway(t, { GATEWAY_ALLOW_ANONYMOUS: 'true' }, { faults: { latencyMs: 20 } })
  const connection = await rawConnection(t, await listeningPort(app))
  connection.socket.write(EXPORT)
  await once(connection.socket, 'data')
  const started = performance.now()
  const closed = app.close()
  // Without the fix the socket stays open for the keep-alive timeout (72 s), or here until the request deadline (30 s) cuts it.
  await connection.ended
  t.ok(performance.now() - started < 5_000, 'ended with the export, not by a timeout')
  t.match(connection.received(), /^HTTP\/1\.1 200 [^]*"complete":true/)
  await closed
})

t.test('a request sent during the close on a connection kept for its answer under way is answered as usual, with Connection: close', async (t) => {
  const { app } = await sandboxGateway(t, { GATEWAY_ALLOW_ANONYMOUS: 'true' }, { faults: { latencyMs: 20 } })
  // Asked twice: remembered by the early path of fresh hits, which must not answer it while closing.
  for (let i = 0; i < 2; i++) await app.inject('/v1/users/hot/followers')
  const connection = await rawConnection(t, await listeningPort(app))
  connection.socket.write(EXPORT)
  await once(connection.socket, 'data')
  const closed = app.close()
  connection.socket.write(HIT)
  await connection.ended
  const answers = connection.received().split(/(?=HTTP\/1\.1 )/)
  t.equal(answers.length, 2)
  t.match(answers[1], /^HTTP\/1\.1 200 [^]*connection: close\r\n[^]*x-cache: HIT/i)
  await closed
})

t.test('an export whose reader stopped reading is cut at the request deadline, so the close ends in its grace period', async (t) => {
  const { app } = await sandboxGateway(t, { GATEWAY_ALLOW_ANONYMOUS: 'true', REQUEST_DEADLINE_MS: '1000' })
  const connection = await rawConnection(t, await listeningPort(app))
  connection.socket.write('GET /v1/users/many200000/followers/export HTTP/1.1\r\nHost: x\r\n\r\n')
  await once(connection.socket, 'data')
  connection.socket.pause()
  const started = performance.now()
  await app.close()
  t.ok(performance.now() - started < 5_000, 'closed by the deadline, not by the reader')
})

/** Opens `count` connections to `port` and sends each a request: `sent` appears once all are with the kernel; resolves with what each received. */
const CLIENTS = `
const [port, count, sent] = process.argv.slice(1).map((arg, i) => (i < 2 ? Number(arg) : arg))
const answers = Array(count).fill('')
let written = 0
let open = count
for (let i = 0; i < count; i++) {
  const socket = require('node:net').connect(port, '127.0.0.1', () =>
    socket.write('GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n', () => ++written === count && require('node:fs').writeFileSync(sent, ''))
  )
  socket.setEncoding('latin1').on('data', (chunk) => (answers[i] += chunk)).on('error', () => {})
  socket.on('close', () => --open === 0 && process.stdout.write(JSON.stringify(answers)))
}`

t.test('connections the kernel completed, their requests sent, but not yet taken by the server when the close began are answered, not reset', async (t) => {
  const { app } = await sandboxGateway(t, { GATEWAY_ALLOW_ANONYMOUS: 'true' })
  const port = await listeningPort(app)
  const dir = await mkdtemp(join(tmpdir(), 'gateway-close-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const sent = join(dir, 'sent')
  const clients = spawn(process.execPath, ['-e', CLIENTS, String(port), '20', sent], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => clients.kill())
  let output = ''
  clients.stdout.on('data', (chunk) => (output += chunk))
  // The event loop is held until the requests are with the kernel, so the server takes none of the connections before the close.
  const deadline = Date.now() + 10_000
  while (!existsSync(sent) && Date.now() < deadline);
  const closed = app.close()
  await once(clients, 'exit')
  const answers = JSON.parse(output) as string[]
  t.equal(answers.length, 20)
  for (const answer of answers) t.match(answer, /^HTTP\/1\.1 200 [^]*connection: close/i)
  await closed
})

t.test('an export cut by the close at the request deadline, a page being read, gets its access line and no blame on TikTok', async (t) => {
  const { app, logs } = await sandboxGateway(t, { GATEWAY_ALLOW_ANONYMOUS: 'true', REQUEST_DEADLINE_MS: '1000' }, { faults: { latencyMs: 300 } })
  const connection = await rawConnection(t, await listeningPort(app))
  connection.socket.write('GET /v1/users/many200000/followers/export HTTP/1.1\r\nHost: x\r\n\r\n')
  await once(connection.socket, 'data')
  await app.close()
  const lines = logs.map((line) => JSON.parse(line) as Record<string, unknown>)
  t.notOk(lines.some((line) => line.msg === 'export stopped early'), 'the close is not an upstream error')
  t.match(
    lines.filter((line) => line.msg === 'request'),
    [{ url: '/v1/users/many200000/followers/export', status: 200, aborted: true }]
  )
})

t.test('a connection that has sent no request, or only part of one, does not hold the close open', async (t) => {
  const { app } = await sandboxGateway(t, { GATEWAY_ALLOW_ANONYMOUS: 'true' })
  const port = await listeningPort(app)
  // A load balancer's pre-opened connection, and a client stalled mid-headers.
  for (const sent of ['', 'GET /healthz HTTP/1.1\r\nHost: x\r\n']) (await rawConnection(t, port)).socket.write(sent)
  // Without the fix the close waits for Node's headers timeout (60 s), past the grace period.
  const closedInTime = await Promise.race([app.close().then(() => true), sleep(5_000, false)])
  t.ok(closedInTime, 'app.close() resolved within 5 s')
})
