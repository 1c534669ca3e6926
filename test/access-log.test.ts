import { hostname } from 'node:os'
import t from 'tap'
import { AccessLog } from '../src/access-log.js'
import { LogBatcher } from '../src/log-batcher.js'

const TIME = 1_764_149_000_123
const ID = 'abcdef01-2345-6789-abcd-ef0123456789'

/** An access log whose lines are collected as text, batched (a flush per line) or not. */
function accessLog(flushMs: number) {
  const written: string[] = []
  const batcher = new LogBatcher({ write: (chunk: Buffer) => void written.push(chunk.toString()) }, flushMs)
  const log = new AccessLog('info', batcher, () => TIME)
  const line = (entry: { url: string; ms: number; consumer: string; method?: string; status?: number; aborted?: true }) => {
    log.write({ reqId: ID, method: entry.method ?? 'GET', urlJson: JSON.stringify(entry.url), status: entry.status ?? 200, ms: entry.ms, consumer: entry.consumer, aborted: entry.aborted })
    batcher.flush()
    return written.splice(0).join('')
  }
  return { line, close: () => batcher.close() }
}

/** The line pino writes for these fields (its base bindings, then the fields in order), `ms` printed as given. */
function pinoLine(fields: { url: string; ms: string; consumer: string; method?: string; status?: number; aborted?: true }): string {
  const consumer = fields.consumer === '' ? '' : `,"consumer":${JSON.stringify(fields.consumer)}`
  const aborted = fields.aborted ? ',"aborted":true' : ''
  return (
    `{"level":30,"time":${TIME},"pid":${process.pid},"hostname":${JSON.stringify(hostname())},"reqId":"${ID}",` +
    `"method":"${fields.method ?? 'GET'}","url":${JSON.stringify(fields.url)},"status":${fields.status ?? 200},"ms":${fields.ms}${consumer}${aborted},"msg":"request"}\n`
  )
}

t.test('an access line is the line pino writes for its fields, byte for byte, with ms to the microsecond', async (t) => {
  for (const flushMs of [0, 50]) {
    const log = accessLog(flushMs)
    t.teardown(log.close)
    const cases = [
      { url: '/v1/users/someone/followers?max_count=5', ms: 0.13, printed: '0.130', consumer: 'alice' },
      { url: '/livez', ms: 0, printed: '0.000', consumer: '' },
      { url: '/v1/users/x/followers', ms: 0.0004, printed: '0.000', consumer: 'bob' },
      { url: '/v1/users/x/followers', ms: 0.0005, printed: '0.001', consumer: 'bob' },
      { url: '/v1/users/x/followers', ms: 1.9999, printed: '2.000', consumer: 'bob' },
      { url: '/v1/users/x/followers', ms: 12.345678, printed: '12.346', consumer: 'bob' },
      { url: '/v1/exports/followers.ndjson', ms: 61234.5, printed: '61234.500', consumer: 'bob', status: 404, method: 'HEAD' },
      { url: '/v1/users/x/followers/export', ms: 2.5, printed: '2.500', consumer: 'bob', aborted: true as const },
      // Text a JSON string escapes, and characters of more than one UTF-8 byte, in the URL and the consumer's name.
      { url: '/v1/users/ünï"\\/followers?cursor=é', ms: 3.02, printed: '3.020', consumer: 'jürgen "ops" 研究' }
    ]
    for (const { printed, ...entry } of cases) {
      const line = log.line(entry)
      t.equal(line, pinoLine({ ...entry, ms: printed }), `flushMs ${flushMs}: ${entry.url} ${entry.ms}`)
      t.equal(JSON.parse(line).url, entry.url)
    }
  }
})
