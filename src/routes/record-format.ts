import { negotiate } from '@fastify/accept-negotiator'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { RecordFormat } from '../schemas/export.js'
import { MEDIA_TYPE } from '../services/record-format.js'

const BY_MEDIA_TYPE = new Map<string, RecordFormat>([
  ['application/x-ndjson', 'ndjson'],
  ['text/csv', 'csv']
])

/** The format a request asks for: `?format=` first, then an Accept header that prefers CSV; NDJSON otherwise. */
export function formatOf(request: FastifyRequest, format: RecordFormat | undefined): RecordFormat {
  return format ?? BY_MEDIA_TYPE.get(negotiate(request.headers.accept ?? '', [...BY_MEDIA_TYPE.keys()]) ?? '') ?? 'ndjson'
}

/** A record stream's headers: its media type, never cached, varying with Accept; a CSV also names its file for browsers. */
export function sendRecords(reply: FastifyReply, format: RecordFormat, filename: string, body: NodeJS.ReadableStream): FastifyReply {
  reply.type(MEDIA_TYPE[format]).header('cache-control', 'no-store').header('vary', 'accept')
  if (format === 'csv') reply.header('content-disposition', `attachment; filename="${filename}.csv"`)
  return reply.send(body)
}
