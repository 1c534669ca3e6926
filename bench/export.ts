/**
 * Export of a long list: the sandbox in this process, the gateway in a process of its own started
 * as deployed (`node dist/server.js` with the Node flags of `npm start`; `src/server.ts` through tsx
 * in quick mode, where RSS is not the point), this process reading the NDJSON stream as fast as it
 * comes. The gateway's peak RSS is the kernel's high-water mark (VmHWM), reset before each export.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { SANDBOX_CREDENTIALS } from '../src/config.js'
import { startSandbox } from '../src/sandbox/sandbox.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const KEY = 'bench-export-key-0123456789'

export interface ExportRun {
  records: number
  complete: boolean
  seconds: number
  recordsPerSecond: number
  upstreamCalls: number
  /** The gateway's RSS: its peak during the export, and after it. */
  peakRssBytes: number
  rssAfterBytes: number
}

/**
 * How `npm start` runs the gateway (`export NAME=value && exec node <flags> dist/server.js`): its Node
 * flags, and the environment variables it exports (the C library's, which Node cannot set itself).
 */
export async function deployedRuntime(): Promise<{ flags: string[]; env: Record<string, string> }> {
  const { scripts } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }
  const words = scripts.start.split(' ')
  const env = words.flatMap((word): Array<[string, string]> => {
    const [, name, value] = /^([A-Z_]+)=(.*)$/.exec(word) ?? []
    return name === undefined || value === undefined ? [] : [[name, value]]
  })
  return { flags: words.filter((word) => word.startsWith('--')), env: Object.fromEntries(env) }
}

/** Starts the gateway and waits for the log line that says where it listens. */
async function startGateway(compiled: boolean, env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const deployed = compiled ? await deployedRuntime() : { flags: [], env: {} }
  const args = compiled ? [...deployed.flags, 'dist/server.js'] : ['--import=tsx', 'src/server.ts']
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...deployed.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  for await (const line of createInterface({ input: child.stdout })) {
    const url = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line)?.[1]
    if (url !== undefined) {
      // Keep draining its log lines, so that the gateway never blocks on a full pipe.
      child.stdout.resume()
      return { child, url }
    }
  }
  throw new Error('the gateway exited before listening')
}

/** VmRSS and VmHWM (the peak since the last reset) of a process, in bytes. */
async function rssOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { rss: kib('VmRSS'), peak: kib('VmHWM') }
}

/** Resets a process's VmHWM to its current RSS. */
const resetPeak = (pid: number) => writeFile(`/proc/${pid}/clear_refs`, '5')

/** Reads one whole export, counting lines without parsing them (the reader must not be the bottleneck). */
async function readExport(url: string): Promise<{ records: number; complete: boolean }> {
  const response = await request(url, { headers: { authorization: `Bearer ${KEY}` } })
  if (response.statusCode !== 200) throw new Error(`export answered ${response.statusCode}: ${await response.body.text()}`)
  let lines = 0
  let tail = ''
  for await (const chunk of response.body) {
    const text = (chunk as Buffer).toString()
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines++
    tail = (tail + text).slice(-300)
  }
  const end = JSON.parse(tail.trimEnd().split('\n').at(-1) ?? '{}') as { export?: { records: number; complete: boolean } }
  if (end.export === undefined || end.export.records !== lines - 1) throw new Error(`the export ended without a matching end line: ${tail}`)
  return { records: end.export.records, complete: end.export.complete }
}

/**
 * Exports `username`'s followers twice from one gateway (cold, then from its cache), then once from
 * a gateway whose cache is small (memory bounded however long the list).
 */
export async function exportBench({ username, cacheBytes, smallCacheBytes, compiled }: { username: string; cacheBytes: number; smallCacheBytes: number; compiled: boolean }) {
  const sandbox = await startSandbox(SANDBOX_CREDENTIALS)
  const env = {
    TIKTOK_API_BASE_URL: sandbox.url,
    TIKTOK_CLIENT_KEY: SANDBOX_CREDENTIALS.clientKey,
    TIKTOK_CLIENT_SECRET: SANDBOX_CREDENTIALS.clientSecret,
    GATEWAY_API_KEYS: `bench:${KEY}`,
    HOST: '127.0.0.1',
    PORT: '0',
    DAILY_REQUEST_BUDGET: '1000000000',
    CONSUMER_DAILY_BUDGET: '1000000000',
    MAX_EVENT_LOOP_DELAY_MS: '0'
  }
  const run = async (child: ChildProcess, url: string): Promise<ExportRun> => {
    const pid = child.pid ?? NaN
    await resetPeak(pid)
    const calls = sandbox.stats.followerCalls
    const started = performance.now()
    const { records, complete } = await readExport(`${url}/v1/users/${username}/followers/export`)
    const seconds = (performance.now() - started) / 1000
    const { rss, peak } = await rssOf(pid)
    return { records, complete, seconds, recordsPerSecond: records / seconds, upstreamCalls: sandbox.stats.followerCalls - calls, peakRssBytes: peak, rssAfterBytes: rss }
  }
  const stop = async (child: ChildProcess) => {
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    await exited
  }
  try {
    const large = await startGateway(compiled, { ...env, CACHE_MAX_BYTES: String(cacheBytes) })
    const idleRssBytes = (await rssOf(large.child.pid ?? NaN)).rss
    const cold = await run(large.child, large.url)
    const warm = await run(large.child, large.url)
    await stop(large.child)
    const small = await startGateway(compiled, { ...env, CACHE_MAX_BYTES: String(smallCacheBytes) })
    const smallIdleRssBytes = (await rssOf(small.child.pid ?? NaN)).rss
    const smallCache = await run(small.child, small.url)
    await stop(small.child)
    return { username, cacheBytes, smallCacheBytes, idleRssBytes, smallIdleRssBytes, cold, warm, smallCache }
  } finally {
    await sandbox.close()
  }
}
