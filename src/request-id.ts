import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/** A caller's X-Request-Id that is kept: at most 128 characters of a safe alphabet. */
const CALLER_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * A request's id: unique across replicas; a caller's X-Request-Id is kept for tracing when it is a
 * sane token, since it is echoed in every response and log line of the request.
 */
export function requestIdOf(req: IncomingMessage): string {
  const id = req.headers['x-request-id']
  return typeof id === 'string' && CALLER_REQUEST_ID.test(id) ? id : randomUUID()
}
