import fp from 'fastify-plugin'
import type { FastifyReply, preHandlerHookHandler } from 'fastify'
import type { IncomingMessage } from 'node:http'
import underPressure from '@fastify/under-pressure'
import type { Config } from '../config.js'
import { failure, type GatewayError } from '../errors.js'
import type { RateDecision } from '../stores/rate-limiter.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** A route's preHandler (after authentication): the consumer's request rate limit, one bucket per consumer. */
    limitConsumerRate: preHandlerHookHandler
    /** Whether consumer requests are being shed now (the event loop lags). */
    shedsLoad: () => boolean
  }
  interface FastifyContextConfig {
    /** `false`: never shed this route. Liveness, readiness and metrics must answer most when the gateway is busy. */
    loadShedding?: false
  }
}

const PRESSURE_SAMPLE_MS = 1000
const kRateDecision = Symbol('rate decision')
/** A request, with the decision of the entry point that already counted it. */
type Counted = IncomingMessage & { [kRateDecision]?: RateDecision }

/** A request the fast path of cache hits counted and then passed on: it must not be counted again. */
export function passOnCounted(raw: IncomingMessage, decision: RateDecision): void {
  ;(raw as Counted)[kRateDecision] = decision
}

/**
 * Header fields as names and values in turn: how Node's writeHead() takes them most cheaply (an
 * object's keys cost a cache hit 0.3 us more: docs/architecture.md, "The cost of a cache hit"),
 * filled by the helpers both entry points share.
 */
export type HeaderPairs = string[]

/** Sets header pairs on a reply. */
export function setHeaderPairs(reply: FastifyReply, pairs: HeaderPairs): void {
  for (let i = 0; i < pairs.length; i += 2) reply.header(pairs[i]!, pairs[i + 1])
}

/** Adds the x-ratelimit-* headers of a decision, for every answer that counted against the limit. */
export function rateLimitHeaders({ limit, remaining, resetSeconds }: RateDecision, pairs: HeaderPairs = []): HeaderPairs {
  pairs.push('x-ratelimit-limit', String(limit), 'x-ratelimit-remaining', String(remaining), 'x-ratelimit-reset', String(resetSeconds))
  return pairs
}

/**
 * Protects the gateway and its consumers from each other: a per-consumer request rate limit
 * (routes opt in with `preHandler: app.limitConsumerRate`), and load shedding when the event loop lags (routes opt
 * out with `config: { loadShedding: false }`).
 */
export default fp<{ config: Config }>(
  async (app, { config }) => {
    const limiter = app.stores.rateLimiter
    const apply = (consumer: string, reply: FastifyReply, decision: RateDecision): GatewayError | undefined => {
      setHeaderPairs(reply, rateLimitHeaders(decision))
      if (decision.allowed) return undefined
      return failure('GW_CONSUMER_RATE_LIMITED', `"${consumer}" sent more than ${decision.limit} requests a minute; retry in ${decision.resetSeconds} s`, {
        retryAfterSeconds: decision.resetSeconds
      })
    }
    // Synchronous when the decision is at hand: no promise per request.
    app.decorate('limitConsumerRate', (request, reply, done) => {
      const { consumer } = request
      const decision = (request.raw as Counted)[kRateDecision] ?? limiter.tryTake(consumer)
      if (decision !== undefined) {
        done(apply(consumer, reply, decision))
        return
      }
      limiter.take(consumer).then((taken) => done(apply(consumer, reply, taken)), done)
    })

    // Compiling every route's schemas at start-up blocks the loop once; the sample that measured it
    // would shed the first requests for a whole interval, so shedding starts after the next sample.
    let started = false
    app.addHook('onReady', (done) => {
      setTimeout(() => (started = true), PRESSURE_SAMPLE_MS * 1.5).unref()
      done()
    })
    await app.register(underPressure, {
      maxEventLoopDelay: config.maxEventLoopDelayMs,
      sampleInterval: PRESSURE_SAMPLE_MS,
      retryAfter: 10,
      pressureHandler: (request, _reply, type, value) => {
        if (!started || request.routeOptions.config.loadShedding === false) return
        throw failure('GW_OVERLOADED', `The gateway is shedding load (${type}: ${value}); retry in 10 s`, { retryAfterSeconds: 10 })
      }
    })
    app.decorate('shedsLoad', () => started && app.isUnderPressure())
  },
  { name: 'guards', dependencies: ['consumer-auth', 'services'] }
)
