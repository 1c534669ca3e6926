/** TikTok's daily quota resets at 00:00 UTC. */
export function secondsUntilNextUtcDay(nowMs: number): number {
  const next = new Date(nowMs)
  next.setUTCHours(24, 0, 0, 0)
  return Math.ceil((next.getTime() - nowMs) / 1000)
}
