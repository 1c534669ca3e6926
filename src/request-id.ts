import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/** A caller's X-Request-Id that is kept: at most 128 characters of a safe alphabet. */
const CALLER_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Random once per process: the ids of two replicas never meet, and no id costs a random draw. */
const PROCESS_PART = randomUUID().slice(0, 24)
let sequence = 0

/** A new id in the shape of a UUID: this process's random part, then a count of its ids (12 hex digits). */
export function newRequestId(): string {
  sequence = (sequence + 1) % 2 ** 48
  return PROCESS_PART + sequence.toString(16).padStart(12, '0')
}

/**
 * A request's id: unique across replicas; a caller's X-Request-Id is kept for tracing when it is a
 * sane token, since it is echoed in every response and log line of the request. Either way it
 * needs no escaping in JSON or a header.
 */
export function requestIdOf(req: IncomingMessage): string {
  const id = req.headers['x-request-id']
  return typeof id === 'string' && CALLER_REQUEST_ID.test(id) ? id : newRequestId()
}
