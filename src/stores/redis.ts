import type { FastifyBaseLogger } from 'fastify'
import { Redis } from 'ioredis'
import { failure, isGatewayError, type GatewayError } from '../errors.js'

export interface RedisConnectionOptions {
  url: string
  /** Names the connection in logs and metrics (e.g. `state`, `cache`). */
  role: string
  connectTimeoutMs: number
  commandTimeoutMs: number
  logger: FastifyBaseLogger
}

/** How soon a consumer refused for want of Redis may try again: reconnection is attempted at least every second. */
export const UNAVAILABLE_RETRY_SECONDS = 5

/** A failed Redis command as the row of the error table a caller sees: shared state unavailable (503), or full. */
export function sharedStateFailure(err: unknown): GatewayError {
  if (isGatewayError(err)) return err
  const full = err instanceof Error && err.message.startsWith('OOM')
  const detail = full
    ? 'Redis is full (maxmemory, noeviction) and refuses the write; an operator must free or grow it'
    : 'The shared state of the replicas (Redis) is unavailable; retry shortly'
  return failure('GW_SHARED_STATE_UNAVAILABLE', detail, { retryAfterSeconds: UNAVAILABLE_RETRY_SECONDS, cause: err })
}

/** The longest pause between reconnection attempts: Redis is back in use at most this long after it returns. */
const MAX_RECONNECT_DELAY_MS = 1000

/**
 * One Redis client that fails fast and reconnects by itself, with its health. Without these
 * options a command against a stopped Redis waits in the offline queue (73 s were measured), so
 * every request would hang behind it; here a command fails at once while disconnected and after
 * `commandTimeoutMs` while Redis is slow, and callers fall back to what this process can do alone.
 */
export class RedisConnection {
  readonly client: Redis
  readonly role: string
  readonly #logger: FastifyBaseLogger
  readonly #recoveryListeners = new Set<() => void>()
  #up = false
  /** Whether the current outage has been logged: one line when it starts, one when it ends. */
  #outageLogged = false

  constructor({ url, role, connectTimeoutMs, commandTimeoutMs, logger }: RedisConnectionOptions) {
    this.role = role
    this.#logger = logger
    this.client = new Redis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: connectTimeoutMs,
      commandTimeout: commandTimeoutMs,
      retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, MAX_RECONNECT_DELAY_MS),
      // Connection errors are reported once per outage below, not by ioredis on every attempt.
      showFriendlyErrorStack: false
    })
    this.client.on('ready', () => {
      this.#up = true
      if (this.#outageLogged) this.#logger.info({ redis: role }, 'Redis is available again; shared state resumes')
      this.#outageLogged = false
      for (const listener of this.#recoveryListeners) listener()
    })
    const down = (err?: Error) => {
      this.#up = false
      if (this.#outageLogged || this.client.status === 'end') return
      this.#outageLogged = true
      this.#logger.error(
        { redis: role, err },
        'Redis is unavailable: serving from process memory, coalescing in this process, spending a local share of the quota'
      )
    }
    this.client.on('error', down)
    this.client.on('close', () => down())
  }

  /** Whether commands can be sent now. */
  get up(): boolean {
    return this.#up
  }

  /** Waits for the first connection, at most `ms`: a replica starts (degraded) even while Redis is down. */
  async ready(ms: number): Promise<void> {
    if (this.#up) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms).unref()
      this.client.once('ready', () => {
        clearTimeout(timer)
        resolve()
      })
    })
  }

  /** Calls `listener` each time Redis is back after an outage (and on the first connection). */
  onRecover(listener: () => void): void {
    this.#recoveryListeners.add(listener)
  }

  /** A second connection with the same options, for pub/sub (a subscribed client can send nothing else). */
  duplicate(): Redis {
    const client = this.client.duplicate()
    // Its outages are the main connection's; polling covers the messages it misses.
    client.on('error', () => {})
    return client
  }

  async close(): Promise<void> {
    this.#recoveryListeners.clear()
    this.client.disconnect()
  }
}
