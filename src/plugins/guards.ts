import fp from 'fastify-plugin'
import type { FastifyReply, preHandlerHookHandler } from 'fastify'
import underPressure from '@fastify/under-pressure'
import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import { failure, type GatewayError } from '../errors.js'
import { setHeaderPairs, type HeaderPairs } from '../header-pairs.js'
import type { RateDecision } from '../stores/rate-limiter.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** A route's preHandler (after authentication): the consumer's request rate limit, one bucket per consumer. */
    limitConsumerRate: preHandlerHookHandler
    /** The refusal of a consumer request while load is being shed (the event loop lags); undefined when not shedding. */
    overload: () => GatewayError | undefined
  }
  interface FastifyContextConfig {
    /**
     * `false`: never shed this route. Liveness, readiness and metrics must answer most when the gateway is busy.
     * `'admit'`: shed by the page pipeline's admit(), on both entry points, rather than by under-pressure's hook.
     */
    loadShedding?: false | 'admit'
  }
}

const PRESSURE_SAMPLE_MS = 1000

/** Adds the x-ratelimit-* headers of a decision, for every answer that counted against the limit. */
export function rateLimitHeaders({ limit, remaining, resetSeconds }: RateDecision, pairs: HeaderPairs = []): HeaderPairs {
  pairs.push('x-ratelimit-limit', String(limit), 'x-ratelimit-remaining', String(remaining), 'x-ratelimit-reset', String(resetSeconds))
  return pairs
}

/** The refusal of a request the limit does not admit; undefined when it admits it. */
export function rateRefusal(consumer: string, decision: RateDecision): GatewayError | undefined {
  if (decision.allowed) return undefined
  return failure('GW_CONSUMER_RATE_LIMITED', `"${consumer}" sent more than ${decision.limit} requests a minute; retry in ${decision.resetSeconds} s`, {
    retryAfterSeconds: decision.resetSeconds
  })
}

const SHED_RETRY_SECONDS = 10

const overloaded = (type: string, value: number | undefined): GatewayError =>
  failure('GW_OVERLOADED', `The gateway is shedding load (${type}: ${value}); retry in ${SHED_RETRY_SECONDS} s`, { retryAfterSeconds: SHED_RETRY_SECONDS })

/**
 * Protects the gateway and its consumers from each other: a per-consumer request rate limit
 * (routes opt in with `preHandler: app.limitConsumerRate`), and load shedding when the event loop lags (routes opt
 * out with `config: { loadShedding: false }`). The page pipeline's admit() uses the same functions.
 */
export interface GuardsOptions {
  config: Config
  clock: Clock
  /** The load signal, the event loop's lag in ms: under-pressure's sample by default; tests inject their own. */
  eventLoopDelay?: () => number
}

export default fp<GuardsOptions>(
  async (app, { config, clock, eventLoopDelay }) => {
    const limiter = app.stores.rateLimiter
    const apply = (consumer: string, reply: FastifyReply, decision: RateDecision): GatewayError | undefined => {
      setHeaderPairs(reply, rateLimitHeaders(decision))
      return rateRefusal(consumer, decision)
    }
    // Synchronous when the decision is at hand: no promise per request.
    app.decorate('limitConsumerRate', function limitConsumerRate(request, reply, done) {
      const { consumer } = request
      const decision = limiter.tryTake(consumer)
      if (decision !== undefined) done(apply(consumer, reply, decision))
      else limiter.take(consumer).then((taken) => done(apply(consumer, reply, taken)), done)
    })

    // Compiling every route's schemas at start-up blocks the loop once; the sample that measured it
    // would shed the first requests for a whole interval, so shedding starts after the next sample.
    let started = false
    app.addHook('onReady', (done) => {
      clock.setTimeout(() => (started = true), PRESSURE_SAMPLE_MS * 1.5)
      done()
    })
    const { maxEventLoopDelayMs } = config
    if (maxEventLoopDelayMs === 0) {
      app.decorate('overload', () => undefined)
      return
    }
    // under-pressure only samples the lag here; the decision is made below, on the one signal tests can inject.
    await app.register(underPressure, { maxEventLoopDelay: maxEventLoopDelayMs, sampleInterval: PRESSURE_SAMPLE_MS, pressureHandler: () => undefined })
    const lag = eventLoopDelay ?? (() => app.memoryUsage().eventLoopDelay)
    const overload = (): GatewayError | undefined => {
      const delay = lag()
      return started && delay > maxEventLoopDelayMs ? overloaded('eventLoopDelay', delay) : undefined
    }
    app.decorate('overload', overload)
    app.addHook('onRequest', function shedLoad(request, _reply, done) {
      done(request.routeOptions.config.loadShedding === undefined ? overload() : undefined)
    })
  },
  { name: 'guards', dependencies: ['consumer-auth', 'services'] }
)
