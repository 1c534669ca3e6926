import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import underPressure from '@fastify/under-pressure'
import type { Config } from '../config.js'
import { failure } from '../errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false`: never shed this route. Liveness, readiness and metrics must answer most when the gateway is busy. */
    loadShedding?: false
  }
}

/**
 * Protects the gateway and its consumers from each other: a per-consumer request rate limit
 * (routes opt in with `config: { rateLimit: {} }`), and load shedding when the event loop lags (routes opt
 * out with `config: { loadShedding: false }`).
 */
export default fp<{ config: Config }>(
  async (app, { config }) => {
    await app.register(rateLimit, {
      global: false,
      max: config.rateLimitPerMinute,
      timeWindow: 60_000,
      // After authentication, so that the limit is the consumer's, not the client address's.
      hook: 'preHandler',
      keyGenerator: (request) => request.consumer,
      errorResponseBuilder: (request, context) =>
        failure('GW_CONSUMER_RATE_LIMITED', `"${request.consumer}" sent more than ${context.max} requests a minute; retry in ${context.after}`, {
          retryAfterSeconds: Math.ceil(context.ttl / 1000)
        })
    })
    await app.register(underPressure, {
      maxEventLoopDelay: config.maxEventLoopDelayMs,
      retryAfter: 10,
      pressureHandler: (request, _reply, type, value) => {
        if (request.routeOptions.config.loadShedding === false) return
        throw failure('GW_OVERLOADED', `The gateway is shedding load (${type}: ${value}); retry in 10 s`, { retryAfterSeconds: 10 })
      }
    })
  },
  { name: 'guards', dependencies: ['consumer-auth'] }
)
