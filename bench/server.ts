/**
 * A server under test in a process of its own, so that the load generator, the sandbox and each
 * server never share an event loop: argv[2] names the variant, argv[3] holds its options as JSON.
 * Sends `{ url }` over IPC once listening; answers `cpu` (process.cpuUsage) and `memory` (after a
 * full GC), and exits on `close`.
 */
import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import { loggingOptions } from '../src/access-log.js'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { LogBatcher, logDestination } from '../src/log-batcher.js'
import type { ServerRequest, ServerVariant } from './stack.js'

const variant = process.argv[2] as ServerVariant
const options = JSON.parse(process.argv[3] ?? '{}') as { env?: NodeJS.ProcessEnv; body?: string; headers?: Record<string, string> }

/** As deployed, minus the terminal: log lines are written, to /dev/null. */
const devNull = () => logDestination('/dev/null')

async function build(): Promise<FastifyInstance> {
  if (variant === 'gateway') return buildApp({ config: loadConfig(options.env), logStream: devNull() })
  const bytes = Buffer.from(options.body ?? '', 'base64')
  // The logged baseline writes the gateway's own access line (same logger, same ids, same batches at the default LOG_FLUSH_MS), nothing else.
  const logged = () => loggingOptions('info', new LogBatcher(devNull(), loadConfig({}).logFlushMs))
  const bare = variant === 'bare-logged' ? Fastify({ ...logged(), genReqId: () => randomUUID() }) : Fastify({ logger: false })
  // bare-headers: fixed copies of the headers a gateway hit sends, so that their own cost (Node's per-header work) is measured apart.
  const headers = variant === 'bare-headers' ? (options.headers ?? {}) : {}
  bare.get('/page', (_request, reply) => reply.headers(headers).type('application/json; charset=utf-8').send(bytes))
  return bare
}

const app = await build()
const url = await app.listen({ host: '127.0.0.1', port: 0 })
const send = (message: unknown) => process.send?.(message)
process.on('message', (request: ServerRequest) => {
  if (request === 'cpu') send({ cpu: process.cpuUsage() })
  if (request === 'memory') {
    ;(globalThis as { gc?: () => void }).gc?.()
    send({ memory: process.memoryUsage() })
  }
  if (request === 'close') void app.close().then(() => process.disconnect())
})
send({ url })
