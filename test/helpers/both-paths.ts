import type { IncomingHttpHeaders } from 'node:http'
import type { Test } from 'tap'
import { request } from 'undici'
import type { FastifyInstance } from 'fastify'
import { PAGE_ROUTE_HOOKS } from '../../src/page-pipeline.js'
import type { Clock } from '../../src/clock.js'
import { GATEWAY_API_KEYS, sandboxGateway } from './gateway.js'

/** One answer, from either path. */
export interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: string
  /** The log lines the request wrote, without their time and duration. */
  lines: Array<Record<string, unknown>>
}

/** Headers that may differ between two answers to one request: the date, the connection's own, and the rate count (each answer is counted). */
const OWN = ['date', 'connection', 'keep-alive', 'x-ratelimit-remaining']

/**
 * A listening gateway that answers a page request by both entry points: `routed()` through
 * app.inject(), which never takes the early path, and `early()` over a real socket, which must be
 * answered before the router (it fails the test otherwise). Give it a clock that does not move, so
 * that two answers do not straddle a second (max-age, x-ratelimit-reset).
 */
export async function bothPaths(t: Test, env: NodeJS.ProcessEnv, clock: Clock, eventLoopDelay?: () => number) {
  const gateway = await sandboxGateway(t, { GATEWAY_API_KEYS, LOG_LEVEL: 'info', ...env }, {}, { clock, eventLoopDelay })
  const { app, logs } = gateway
  const serve = app.fastHits.serve.bind(app.fastHits)
  let early = 0
  app.fastHits.serve = (req, res) => {
    const served = serve(req, res)
    if (served) early++
    return served
  }
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  /** The lines logged while `send` runs. */
  const logged = async (send: () => Promise<Omit<Answer, 'lines'>>): Promise<Answer> => {
    const from = logs.length
    const answer = await send()
    const lines = logs.slice(from).map((line) => ({ ...(JSON.parse(line) as Record<string, unknown>), time: 0, ms: 0 }))
    return { ...answer, lines }
  }
  return {
    ...gateway,
    routed: (url: string, headers: Record<string, string>) =>
      logged(async () => {
        const res = await app.inject({ url, headers })
        // inject() types its headers as Node's outgoing ones; they are what the server sent.
        return { status: res.statusCode, headers: res.headers as IncomingHttpHeaders, body: res.body }
      }),
    early: (t: Test, url: string, headers: Record<string, string>) =>
      logged(async () => {
        const before = early
        const res = await request(`${base}${url}`, { headers })
        const body = await res.body.text()
        t.equal(early, before + 1, `${url}: answered by the early path`)
        return { status: res.statusCode, headers: res.headers, body }
      })
  }
}

/** Asserts that two answers to one request are the same: status, headers (all but OWN), body and log lines (an error's stack aside). */
export function sameAnswer(t: Test, routed: Answer, early: Answer, label: string): void {
  const comparable = (headers: IncomingHttpHeaders) => Object.fromEntries(Object.entries(headers).filter(([name]) => !OWN.includes(name)))
  t.equal(early.status, routed.status, `${label}: status`)
  t.same(comparable(early.headers), comparable(routed.headers), `${label}: headers`)
  t.strictSame(Object.keys(comparable(early.headers)), Object.keys(comparable(routed.headers)), `${label}: header order`)
  t.equal(early.body, routed.body, `${label}: body`)
  const withoutStack = (lines: Answer['lines']) => lines.map(({ err, ...line }) => (typeof err === 'object' && err !== null ? { ...line, err: { ...err, stack: 'where it was made' } } : line))
  t.same(withoutStack(early.lines), withoutStack(routed.lines), `${label}: log lines`)
}

/** Fastify's hooks of a route's lifecycle, as its route context holds them. */
const LIFECYCLE_HOOKS = ['onRequest', 'preParsing', 'preValidation', 'preHandler', 'preSerialization', 'onError', 'onSend', 'onResponse', 'onTimeout', 'onRequestAbort']

/** The hook names PAGE_ROUTE_HOOKS lists, by lifecycle hook. */
export const LISTED_HOOKS = Object.fromEntries(Object.entries(PAGE_ROUTE_HOOKS).map(([hook, names]) => [hook, Object.keys(names)]))

/**
 * The hooks the routed path runs for a GET of `url`, by name: global, plugin and route hooks alike,
 * as Fastify's route context holds them once the app is ready (each bound to its instance, "bound
 * <name>"). Fastify has no public API for them: the context is read through the request's symbol.
 */
export async function routeHooks(app: FastifyInstance, url: string, headers: Record<string, string>): Promise<Record<string, string[]>> {
  const remember = app.fastHits.remember.bind(app.fastHits)
  let context: Record<string, unknown> | undefined
  app.fastHits.remember = (request, key, nextPrefix) => {
    const symbol = Object.getOwnPropertySymbols(request).find((s) => s.description === 'fastify.context')
    context = symbol === undefined ? undefined : ((request as unknown as Record<symbol, Record<string, unknown>>)[symbol])
    remember(request, key, nextPrefix)
  }
  try {
    const res = await app.inject({ url, headers })
    if (res.statusCode !== 200 || context === undefined) throw new Error(`${url} answered ${res.statusCode} without its route context`)
  } finally {
    app.fastHits.remember = remember
  }
  const hooks: Record<string, string[]> = {}
  for (const hook of LIFECYCLE_HOOKS) {
    const list = context[hook]
    if (Array.isArray(list)) hooks[hook] = list.map((fn: { name: string }) => fn.name.replace(/^bound /, ''))
  }
  return hooks
}

