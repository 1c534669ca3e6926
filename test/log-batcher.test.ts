import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { promisify } from 'node:util'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { LogBatcher, logDestination } from '../src/log-batcher.js'
import { loadConfig } from '../src/config.js'
import { buildGateway } from './helpers/gateway.js'

const accessLines = (logs: string[]) =>
  logs
    .join('')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line))
    .filter((entry) => entry.msg === 'request')

t.test('log lines wait for their batch, and lines logged just before close are on the stream after it', async (t) => {
  const { app, logs } = await buildGateway(t, { GATEWAY_ALLOW_ANONYMOUS: 'true', LOG_FLUSH_MS: '10000' })
  for (let i = 0; i < 3; i++) t.equal((await app.inject('/healthz')).statusCode, 200)
  t.same(accessLines(logs), [], 'nothing written before the batch is due')
  await app.close()
  t.same(
    accessLines(logs).map(({ method, url, status }) => ({ method, url, status })),
    Array(3).fill({ method: 'GET', url: '/healthz', status: 200 }),
    'every line written, whole, by close'
  )
  t.equal(logs.length, 1, 'in one write')
})

t.test('a batch is written when its timer fires, without a close', async (t) => {
  let written: (chunk: string) => void
  const firstWrite = new Promise<string>((resolve) => (written = resolve))
  const logStream = new Writable({
    write(chunk, _encoding, done) {
      written(String(chunk))
      done()
    }
  })
  const app = await buildApp({ config: loadConfig({ GATEWAY_ALLOW_ANONYMOUS: 'true', LOG_FLUSH_MS: '1' }), logStream })
  t.teardown(() => app.close())
  await app.inject('/healthz')
  t.match(accessLines([await firstWrite]), [{ url: '/healthz', status: 200 }])
})

t.test('a line still waiting for its batch keeps the process alive until it is written', async (t) => {
  const script = `import { LogBatcher } from ${JSON.stringify(new URL('../src/log-batcher.ts', import.meta.url).href)}
new LogBatcher(process.stdout, 200).write('{"msg":"last"}\\n')`
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script])
  t.equal(stdout, '{"msg":"last"}\n')
})

t.test('lines of any size and script come out whole and in order, in writes of at most 64 KB but for a line larger alone', async (t) => {
  const writes: string[] = []
  const batcher = new LogBatcher({ write: (chunk: Buffer) => void writes.push(chunk.toString()) }, 10_000)
  const lines = Array.from({ length: 2000 }, (_, i) => `{"n":${i},"who":"naïve ✓ 😀 ${'x'.repeat(i % 97)}"}\n`)
  lines.splice(700, 0, `{"big":"${'é'.repeat(70_000)}"}\n`)
  for (const line of lines) batcher.write(line)
  batcher.close()
  t.equal(writes.join(''), lines.join(''))
  t.ok(writes.length > 3, 'written in several batches')
  t.same(
    writes.filter((chunk) => Buffer.byteLength(chunk) > 64 * 1024),
    [lines[700]],
    'only the line larger than a batch is written alone, past 64 KB'
  )
})

t.test("the gateway's destination has a batch in the file when the flush returns, bytes as they were logged", async (t) => {
  const path = join(t.testdir(), 'gateway.log')
  const batcher = new LogBatcher(logDestination(path), 10_000)
  t.teardown(() => batcher.close())
  const lines = ['{"msg":"naïve ✓ 😀"}\n', '{"msg":"second"}\n']
  for (const line of lines) batcher.write(line)
  t.equal(readFileSync(path, 'utf8'), '', 'held until the batch is due')
  batcher.flush()
  t.equal(readFileSync(path, 'utf8'), lines.join(''), 'written by the time flush() returns: no round trip through the thread pool')
})
