import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildApp, type AppOptions } from '../../src/app.js'
import { loadConfig, SANDBOX_CREDENTIALS } from '../../src/config.js'
import { startSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox/sandbox.js'

/** What a test may inject: the upstream dispatcher, the clock, the load signal. */
type GatewayOptions = Omit<AppOptions, 'config' | 'logStream'>

export interface TestGateway {
  app: FastifyInstance
  /** Every log line the gateway wrote, as raw JSON text. */
  logs: string[]
}

/**
 * Builds the gateway with `env` and captures its logs at trace level, each line as it is logged
 * (LOG_FLUSH_MS=0). Load shedding is off unless a
 * test turns it on: compiling the routes' schemas blocks the loop past under-pressure's first sample,
 * which then reads as an overload for a second, whatever a test does.
 */
export async function buildGateway(
  t: Test,
  env: NodeJS.ProcessEnv,
  options: GatewayOptions = {}
): Promise<TestGateway> {
  const logs: string[] = []
  const logStream = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk))
      done()
    }
  })
  const app = await buildApp({
    config: loadConfig({ LOG_LEVEL: 'trace', LOG_FLUSH_MS: '0', UPSTREAM_RETRIES: '2', MAX_EVENT_LOOP_DELAY_MS: '0', ...env }),
    logStream,
    ...options
  })
  t.teardown(() => app.close())
  return { app, logs }
}

/** A sandbox upstream plus a gateway pointed at it; the sandbox reads the gateway's clock. */
export async function sandboxGateway(
  t: Test,
  env: NodeJS.ProcessEnv = {},
  sandboxOptions: Partial<SandboxOptions> = {},
  options: GatewayOptions = {}
): Promise<TestGateway & { sandbox: Sandbox }> {
  const sandbox = await startSandbox({ ...SANDBOX_CREDENTIALS, now: options.clock?.now, ...sandboxOptions })
  t.teardown(() => sandbox.close())
  const gateway = await buildGateway(t, { TIKTOK_API_BASE_URL: sandbox.url, ...env }, options)
  return { ...gateway, sandbox }
}

/** Consumer keys the tests configure. */
export const KEYS = { alice: 'alice-key-0123456789', bob: 'bob-key-9876543210' }
export const GATEWAY_API_KEYS = `alice:${KEYS.alice},bob:${KEYS.bob}`
