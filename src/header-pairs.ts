import type { FastifyReply } from 'fastify'

/**
 * Header fields as names and values in turn: how Node's writeHead() takes them most cheaply (an
 * object's keys cost a cache hit 0.3 us more: docs/architecture.md, "The cost of a cache hit"). Both entry points of a page
 * request build their answers' headers as pairs; the routed one sets them on its reply.
 */
export type HeaderPairs = string[]

/** Sets header pairs on a reply. */
export function setHeaderPairs(reply: FastifyReply, pairs: HeaderPairs): void {
  for (let i = 0; i < pairs.length; i += 2) reply.header(pairs[i]!, pairs[i + 1])
}
