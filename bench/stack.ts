/**
 * What a benchmark starts: servers in processes of their own (bench/server.ts), the sandbox in
 * this process, the load generator in another (bench/load.ts). The orchestrator only waits while
 * load runs, so each of the three busy parties has its own event loop.
 */
import { execFileSync, fork, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SANDBOX_CREDENTIALS } from '../src/config.js'
import { startSandbox, type Faults } from '../src/sandbox/sandbox.js'
import { deployedRuntime } from './export.js'

const SERVER = fileURLToPath(new URL('./server.ts', import.meta.url))

export type ServerVariant = 'gateway' | 'bare' | 'bare-logged' | 'bare-headers'
export type ServerRequest = 'cpu' | 'memory' | 'close'

export const CONSUMER_KEY = 'bench-consumer-key-0123456789'
export const AUTH = { authorization: `Bearer ${CONSUMER_KEY}` }

/**
 * With two cores or more, the load generator runs on the first and every server on the last
 * (`taskset`, util-linux): neither then takes the other's CPU, and a server's throughput follows its
 * own cost instead of the scheduler's placement (unpinned, bare Fastify's rounds ranged 40-85k req/s).
 */
const LAST_CORE = availableParallelism() - 1
const PINNED = LAST_CORE > 0 && spawnSync('taskset', ['--version']).status === 0

/** `command args` as run on the load generator's core. */
export function onLoadCore(command: string, args: string[]): [string, string[]] {
  return PINNED ? ['taskset', ['--cpu-list', '0', command, ...args]] : [command, args]
}

/** Budgets and rate limits high enough, and no load shedding, so that the load measures the gateway, not its guards. */
const UNLIMITED = {
  RATE_LIMIT_PER_MINUTE: '1000000000',
  DAILY_REQUEST_BUDGET: '1000000000',
  CONSUMER_DAILY_BUDGET: '1000000000',
  MAX_EVENT_LOOP_DELAY_MS: '0'
}

export interface ServerProcess {
  url: string
  /** CPU microseconds (user + system) the server process has used so far. */
  cpu(): Promise<number>
  /** process.memoryUsage() of the server after a full GC. */
  memory(): Promise<NodeJS.MemoryUsage>
  close(): Promise<void>
}

/** `checkout`: another clone of the project whose bench/server.ts to run (a before/after comparison in one run). */
export async function startServer(
  variant: ServerVariant,
  options: { env?: NodeJS.ProcessEnv; body?: Buffer; headers?: Record<string, string>; checkout?: string } = {}
): Promise<ServerProcess> {
  const script = options.checkout === undefined ? SERVER : join(options.checkout, 'bench', 'server.ts')
  const deployed = await deployedRuntime()
  // Every server runs as the gateway is deployed (the Node flags and C library settings of `npm start`), baselines too, so that ratios compare code, not runtimes.
  const child = fork(script, [variant, JSON.stringify({ env: options.env, body: options.body?.toString('base64'), headers: options.headers })], {
    execArgv: [
      '--import=tsx',
      '--expose-gc',
      ...deployed.flags,
      ...(process.env.BENCH_SERVER_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_SERVER_PROF_DIR}`] : [])
    ],
    env: { ...process.env, ...deployed.env },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc']
  })
  // Every thread the server has now; the ones it starts later inherit the core.
  if (PINNED && child.pid !== undefined) execFileSync('taskset', ['--all-tasks', '--pid', '--cpu-list', String(LAST_CORE), String(child.pid)], { stdio: 'ignore' })
  const exited = once(child, 'exit')
  const reply = <K extends string>(key: K) =>
    new Promise<Record<K, unknown>>((resolve, reject) => {
      const onMessage = (message: Record<string, unknown>) => {
        if (!(key in message)) return
        child.off('message', onMessage)
        resolve(message)
      }
      child.on('message', onMessage)
      void exited.then(() => reject(new Error(`bench server ${variant} exited`)))
    })
  const ask = <K extends ServerRequest>(request: K) => {
    const answer = reply(request)
    child.send(request)
    return answer
  }
  const { url } = await reply('url')
  return {
    url: url as string,
    cpu: async () => {
      const { user, system } = (await ask('cpu')).cpu as NodeJS.CpuUsage
      return user + system
    },
    memory: async () => (await ask('memory')).memory as NodeJS.MemoryUsage,
    close: async () => {
      child.send('close')
      await exited
    }
  }
}

/** A gateway process in front of `upstreamUrl`, logging at info as deployed. */
export function startGateway(upstreamUrl: string, env: NodeJS.ProcessEnv = {}, checkout?: string): Promise<ServerProcess> {
  return startServer('gateway', { env: { TIKTOK_API_BASE_URL: upstreamUrl, GATEWAY_API_KEYS: `bench:${CONSUMER_KEY}`, ...UNLIMITED, ...env }, checkout })
}

/** The sandbox and a gateway process in front of it. */
export async function startStack(env: NodeJS.ProcessEnv = {}, faults: Faults = {}, checkout?: string) {
  const sandbox = await startSandbox({ ...SANDBOX_CREDENTIALS, faults })
  const gateway = await startGateway(sandbox.url, env, checkout)
  return {
    sandbox,
    url: gateway.url,
    gateway,
    async close() {
      await gateway.close()
      await sandbox.close()
    }
  }
}
