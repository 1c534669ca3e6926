export interface Limit {
  key: string
  limit: number
}

/**
 * Daily counters (quota). Implementations must make `reserve` atomic across all its counters,
 * also between replicas once the store is shared.
 */
export interface CounterStore {
  /**
   * Adds one to every counter if none would pass its limit, else changes nothing. Returns the
   * index of the first counter that refused, or -1 when the reservation was made. Counters
   * disappear at `expiresAt` (epoch ms). A shared store that cannot reach its shared state, and may
   * not count alone, throws a GW_SHARED_STATE_UNAVAILABLE failure instead.
   */
  reserve(limits: readonly Limit[], expiresAt: number): Promise<number>
  /** Raises a counter to at least `value` (e.g. to its limit, when the upstream says the day is spent). */
  raise(key: string, value: number, expiresAt: number): Promise<void>
  read(keys: readonly string[]): Promise<number[]>
}
