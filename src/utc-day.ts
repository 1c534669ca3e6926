/** TikTok's daily quota resets at 00:00 UTC; the gateway's budgets follow the same day. */

/** Epoch ms of the next 00:00 UTC. */
export function nextUtcDay(nowMs: number): number {
  const next = new Date(nowMs)
  next.setUTCHours(24, 0, 0, 0)
  return next.getTime()
}

export function secondsUntilNextUtcDay(nowMs: number): number {
  return Math.ceil((nextUtcDay(nowMs) - nowMs) / 1000)
}

/** The UTC date, YYYY-MM-DD. */
export function utcDay(nowMs: number): string {
  return new Date(nowMs).toISOString().slice(0, 10)
}
