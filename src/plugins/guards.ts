import fp from 'fastify-plugin'
import type { preHandlerAsyncHookHandler } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import underPressure from '@fastify/under-pressure'
import type { Config } from '../config.js'
import { failure } from '../errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** A route's preHandler (after authentication): the consumer's request rate limit, one bucket per consumer. */
    limitConsumerRate: preHandlerAsyncHookHandler
  }
  interface FastifyContextConfig {
    /** `false`: never shed this route. Liveness, readiness and metrics must answer most when the gateway is busy. */
    loadShedding?: false
  }
}

const PRESSURE_SAMPLE_MS = 1000

/**
 * Protects the gateway and its consumers from each other: a per-consumer request rate limit
 * (routes opt in with `preHandler: app.limitConsumerRate`), and load shedding when the event loop lags (routes opt
 * out with `config: { loadShedding: false }`).
 */
export default fp<{ config: Config }>(
  async (app, { config }) => {
    await app.register(rateLimit, {
      global: false,
      max: config.rateLimitPerMinute,
      timeWindow: 60_000,
      keyGenerator: (request) => request.consumer,
      // One limit across replicas when Redis is configured. While Redis is unavailable requests are
      // let through rather than refused: the quota's outage share still bounds upstream calls.
      ...(app.stores.rateLimitRedis && { redis: app.stores.rateLimitRedis, nameSpace: app.stores.rateLimitNameSpace, skipOnError: true }),
      errorResponseBuilder: (request, context) =>
        failure('GW_CONSUMER_RATE_LIMITED', `"${request.consumer}" sent more than ${context.max} requests a minute; retry in ${context.after}`, {
          retryAfterSeconds: Math.ceil(context.ttl / 1000)
        })
    })
    // The plugin gives each route that opts in through `config.rateLimit` a store of its own, which
    // would multiply the limit by the routes; `app.rateLimit()` without options counts in its one store.
    app.decorate('limitConsumerRate', app.rateLimit())
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
  },
  { name: 'guards', dependencies: ['consumer-auth', 'services'] }
)
