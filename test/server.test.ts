import { spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { SANDBOX_CREDENTIALS } from '../src/config.js'
import { startSandbox } from '../src/sandbox/sandbox.js'

// Each test starts a real process and mostly waits on it: three at a time, within tap's timeout on a loaded machine.
t.setTimeout(120_000)
t.jobs = 3

const SERVER = fileURLToPath(new URL('../src/server.ts', import.meta.url))

/** Runs src/server.ts as `npm start` would, with a clean environment plus `env`. */
function startServer(t: Test, env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, ['--import=tsx', SERVER], {
    env: { PATH: process.env.PATH, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => child.kill('SIGKILL'))
  let output = ''
  child.stdout.on('data', (chunk) => (output += chunk))
  child.stderr.on('data', (chunk) => (output += chunk))
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  return { child, exited, output: () => output }
}

/** Resolves with the base URL once the server logs that it listens. */
function listening(server: ReturnType<typeof startServer>): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    server.child.stdout.on('data', () => {
      const match = /"msg":"Server listening at (http:\/\/127\.0\.0\.1:\d+)"/.exec(server.output())
      if (match?.[1]) resolve(match[1])
    })
    // A spawn failure rejects `exited`: it fails the wait too, instead of an unhandled rejection.
    server.exited.then(() => reject(new Error(server.output())), reject)
  })
}

t.test('without credentials the gateway serves the sandbox, says so loudly, and exits 0 on SIGTERM', async (t) => {
  const server = startServer(t, {})
  const base = await listening(server)
  t.match(server.output(), /"level":40,.*SANDBOX MODE/)
  const res = await fetch(`${base}/v1/users/someone/followers?max_count=2`)
  t.equal(res.status, 200)
  t.equal(((await res.json()) as { followers: unknown[] }).followers.length, 2)
  server.child.kill('SIGTERM')
  const [code] = await server.exited
  t.equal(code, 0)
  t.match(server.output(), /"signal":"SIGTERM".*"msg":"shutting down"/)
})

t.test('NODE_ENV=production without credentials exits non-zero naming the missing variables', async (t) => {
  const server = startServer(t, { NODE_ENV: 'production' })
  const [code] = await server.exited
  t.equal(code, 1)
  t.match(server.output(), /missing TIKTOK_CLIENT_KEY and TIKTOK_CLIENT_SECRET/)
})

/** A gateway process on a sandbox whose answers take `faults`, serving anonymous requests. */
async function serverOnSandbox(t: Test, faults: { latencyMs?: number; hangRate?: number }) {
  const sandbox = await startSandbox({ ...SANDBOX_CREDENTIALS, faults })
  t.teardown(() => sandbox.close())
  const server = startServer(t, {
    TIKTOK_API_BASE_URL: sandbox.url,
    TIKTOK_CLIENT_KEY: SANDBOX_CREDENTIALS.clientKey,
    TIKTOK_CLIENT_SECRET: SANDBOX_CREDENTIALS.clientSecret,
    GATEWAY_ALLOW_ANONYMOUS: 'true'
  })
  return { sandbox, server, base: await listening(server) }
}

t.test('SIGTERM with 50 requests in flight: every one completes, then the process exits 0', async (t) => {
  const { sandbox, server, base } = await serverOnSandbox(t, { latencyMs: 300 })
  let arrived = 0
  const allArrived = new Promise<void>((resolve) => sandbox.events.on('followers', () => ++arrived === 50 && resolve()))
  const responses = Array.from({ length: 50 }, (_, i) => fetch(`${base}/v1/users/inflight${i}/followers`))
  await allArrived
  server.child.kill('SIGTERM')
  const statuses = await Promise.all(responses.map(async (pending) => (await pending).status))
  t.same(statuses, Array(50).fill(200))
  const [code] = await server.exited
  t.equal(code, 0)
})

t.test('a SIGTERM repeated within a second (npm forwarding a process-group signal) is the same one: the close stays graceful and exits 0', async (t) => {
  const { sandbox, server, base } = await serverOnSandbox(t, { latencyMs: 300 })
  const arrived = once(sandbox.events, 'followers')
  const pending = fetch(`${base}/v1/users/twice/followers`)
  await arrived
  server.child.kill('SIGTERM')
  await sleep(20)
  server.child.kill('SIGTERM')
  t.equal((await pending).status, 200)
  const [code] = await server.exited
  t.equal(code, 0)
  t.equal(server.output().match(/"msg":"shutting down"/g)?.length, 1)
})

// The one test that waits more than a second: the window it steps past is real time in another process.
t.test('a SIGTERM more than a second after the first forces an immediate exit 1, a request still in flight', async (t) => {
  const { sandbox, server, base } = await serverOnSandbox(t, { hangRate: 1 })
  const arrived = once(sandbox.events, 'followers')
  const pending = fetch(`${base}/v1/users/stuck/followers`).catch((err: unknown) => err)
  await arrived
  server.child.kill('SIGTERM')
  await sleep(1_100)
  server.child.kill('SIGTERM')
  const [code] = await server.exited
  t.equal(code, 1)
  t.type(await pending, TypeError, 'the request in flight was cut, not answered')
  t.match(server.output(), /second SIGTERM, exiting/)
})

t.test('SIGTERM with a request slower than REQUEST_DEADLINE_MS in flight: it gets its 504 problem, and the process exits 0', async (t) => {
  const sandbox = await startSandbox({ ...SANDBOX_CREDENTIALS, faults: { latencyMs: 2500 } })
  t.teardown(() => sandbox.close())
  const server = startServer(t, {
    TIKTOK_API_BASE_URL: sandbox.url,
    TIKTOK_CLIENT_KEY: SANDBOX_CREDENTIALS.clientKey,
    TIKTOK_CLIENT_SECRET: SANDBOX_CREDENTIALS.clientSecret,
    GATEWAY_ALLOW_ANONYMOUS: 'true',
    REQUEST_DEADLINE_MS: '1000'
  })
  const base = await listening(server)
  const arrived = once(sandbox.events, 'followers')
  const pending = fetch(`${base}/v1/users/slowpoke/followers`)
  await arrived
  server.child.kill('SIGTERM')
  const res = await pending
  t.equal(res.status, 504)
  t.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8')
  t.match(await res.json(), { type: 'urn:tiktok-research-gateway:problem:deadline-exceeded' })
  const [code] = await server.exited
  t.equal(code, 0)
  t.match(server.output(), /"graceMs":6000,.*"msg":"shutting down"/, 'the grace period is the deadline plus a margin')
})

t.test('SIGTERM while an upstream call hangs past its caller: the call is aborted once the server drains, and the process exits 0', async (t) => {
  const sandbox = await startSandbox({ ...SANDBOX_CREDENTIALS, faults: { hangRate: 1 } })
  t.teardown(() => sandbox.close())
  const server = startServer(t, {
    TIKTOK_API_BASE_URL: sandbox.url,
    TIKTOK_CLIENT_KEY: SANDBOX_CREDENTIALS.clientKey,
    TIKTOK_CLIENT_SECRET: SANDBOX_CREDENTIALS.clientSecret,
    GATEWAY_ALLOW_ANONYMOUS: 'true',
    REQUEST_DEADLINE_MS: '500',
    UPSTREAM_TIMEOUT_MS: '60000'
  })
  const base = await listening(server)
  const res = await fetch(`${base}/v1/users/hung/followers`)
  t.equal(res.status, 504, 'the caller has had its answer; the upstream call still hangs')
  server.child.kill('SIGTERM')
  const [code] = await server.exited
  t.equal(code, 0)
})
