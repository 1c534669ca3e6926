import type { CounterStore, Limit } from './counter-store.js'

/** Counters in this process; JavaScript runs `reserve` to completion, which makes it atomic here. */
export class MemoryCounterStore implements CounterStore {
  readonly #counters = new Map<string, { value: number; expiresAt: number }>()
  readonly #now: () => number

  constructor(now: () => number) {
    this.#now = now
  }

  async reserve(limits: readonly Limit[], expiresAt: number): Promise<number> {
    const refused = limits.findIndex(({ key, limit }) => this.#value(key) + 1 > limit)
    if (refused === -1) {
      for (const { key } of limits) this.#counters.set(key, { value: this.#value(key) + 1, expiresAt })
    }
    return refused
  }

  async raise(key: string, value: number, expiresAt: number): Promise<void> {
    this.#counters.set(key, { value: Math.max(value, this.#value(key)), expiresAt })
  }

  async read(keys: readonly string[]): Promise<number[]> {
    return keys.map((key) => this.#value(key))
  }

  #value(key: string): number {
    const counter = this.#counters.get(key)
    if (counter === undefined) return 0
    if (counter.expiresAt > this.#now()) return counter.value
    this.#counters.delete(key)
    return 0
  }
}
