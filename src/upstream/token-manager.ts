export interface IssuedToken {
  accessToken: string
  expiresInSeconds: number
}

/** Renew this long before expiry: a tenth of the lifetime, at most five minutes. */
function renewalMarginMs(expiresInSeconds: number): number {
  return Math.min(expiresInSeconds * 100, 300_000)
}

/**
 * Holds one client access token at a time. Concurrent callers that need a new token share one
 * exchange; a token is renewed once it is within its margin of expiry, and dropped when TikTok
 * says it is invalid.
 */
export class TokenManager {
  #current: { token: string; renewAt: number } | undefined
  #exchanging: Promise<string> | undefined
  readonly #exchange: () => Promise<IssuedToken>
  readonly #now: () => number

  constructor(exchange: () => Promise<IssuedToken>, now: () => number) {
    this.#exchange = exchange
    this.#now = now
  }

  /** The token in use, if any. */
  get current(): string | undefined {
    return this.#current?.token
  }

  get(): Promise<string> {
    if (this.#current !== undefined && this.#now() < this.#current.renewAt) {
      return Promise.resolve(this.#current.token)
    }
    this.#exchanging ??= this.#renew().finally(() => {
      this.#exchanging = undefined
    })
    return this.#exchanging
  }

  /** Forgets `token` if it is still the current one (several callers may report the same token). */
  invalidate(token: string): void {
    if (this.#current?.token === token) this.#current = undefined
  }

  async #renew(): Promise<string> {
    this.#current = undefined
    const issued = await this.#exchange()
    const lifetimeMs = issued.expiresInSeconds * 1000
    this.#current = {
      token: issued.accessToken,
      renewAt: this.#now() + lifetimeMs - renewalMarginMs(issued.expiresInSeconds)
    }
    return issued.accessToken
  }
}
