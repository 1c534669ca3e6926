import { failure } from '../errors.js'

export type BreakerState = 'closed' | 'open' | 'half-open'

/**
 * Stops calling TikTok for `cooldownMs` after `threshold` failures in a row (network errors,
 * 5xx after retries). Once the cooldown has passed, one call probes: its success closes the
 * circuit, its failure opens it again. Calls while open fail fast with a 503 and Retry-After.
 */
export class CircuitBreaker {
  #failures = 0
  #openUntil: number | undefined
  #probing = false
  readonly #threshold: number
  readonly #cooldownMs: number
  readonly #now: () => number

  constructor(threshold: number, cooldownMs: number, now: () => number) {
    this.#threshold = threshold
    this.#cooldownMs = cooldownMs
    this.#now = now
  }

  get state(): BreakerState {
    if (this.#openUntil === undefined) return 'closed'
    return this.#probing || this.#now() >= this.#openUntil ? 'half-open' : 'open'
  }

  /** Throws while open (and while another call is probing); otherwise lets the call through. */
  enter(): void {
    if (this.#openUntil === undefined) return
    const waitMs = this.#openUntil - this.#now()
    if (waitMs > 0 || this.#probing) {
      throw failure('GW_UPSTREAM_UNAVAILABLE', 'TikTok failed repeatedly; the gateway pauses its calls for a while (circuit open)', {
        retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000))
      })
    }
    this.#probing = true
  }

  succeeded(): void {
    this.#failures = 0
    this.#openUntil = undefined
    this.#probing = false
  }

  /** The call never reached TikTok: a probe slot it held is free again. */
  abandoned(): void {
    this.#probing = false
  }

  failed(): void {
    this.#failures++
    if (this.#probing || this.#failures >= this.#threshold) this.#openUntil = this.#now() + this.#cooldownMs
    this.#probing = false
  }
}
