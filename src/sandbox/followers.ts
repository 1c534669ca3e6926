import type { FollowersData } from '../upstream/wire.js'

/** 2026-01-01T00:00:00Z: no sandbox follower followed later, so pages never change with the clock. */
const NEWEST_FOLLOW = 1_767_225_600

const ADJECTIVES = ['amber', 'brisk', 'calm', 'dusty', 'eager', 'fuzzy', 'gentle', 'hazel', 'ivory', 'jolly', 'keen', 'lucky']
const NOUNS = ['otter', 'falcon', 'maple', 'comet', 'harbor', 'pixel', 'meadow', 'lantern', 'river', 'summit', 'willow', 'ember']

interface SandboxFollower {
  username: string
  display_name: string
  followed_at: number
}

/** FNV-1a: a stable seed per username. */
function seedOf(text: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return hash >>> 0
}

/** mulberry32: small, fast, deterministic. */
function random(seed: number): () => number {
  let state = seed
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = Math.imul(state ^ (state >>> 15), state | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const pick = (words: readonly string[], random: number): string => words[Math.floor(random * words.length)] ?? ''

const capitalise = (word: string): string => word.charAt(0).toUpperCase() + word.slice(1)

/** Every follower of a sandbox user, newest first, with strictly decreasing follow times; 40 to 300 of them. */
export function sandboxFollowers(username: string): SandboxFollower[] {
  const next = random(seedOf(username))
  const count = 40 + Math.floor(next() * 261)
  const followers: SandboxFollower[] = []
  let followedAt = NEWEST_FOLLOW - Math.floor(next() * 600)
  for (let i = 0; i < count; i++) {
    const adjective = pick(ADJECTIVES, next())
    const noun = pick(NOUNS, next())
    followers.push({
      username: `${adjective}.${noun}${i}`,
      display_name: `${capitalise(adjective)} ${capitalise(noun)}`,
      followed_at: followedAt
    })
    followedAt -= 1 + Math.floor(next() * 7200)
  }
  return followers
}

/** The page of followers who followed on or before `cursor`, as the Research API returns it. */
export function followersPage(username: string, maxCount: number, cursor: number): FollowersData {
  const all = sandboxFollowers(username)
  const start = all.findIndex((follower) => follower.followed_at <= cursor)
  if (start === -1) return { user_followers: [], cursor, has_more: false }
  const page = all.slice(start, start + maxCount)
  return {
    user_followers: page.map(({ username, display_name }) => ({ username, display_name })),
    // `start` found a follower, so the page holds at least one.
    cursor: (page.at(-1)?.followed_at ?? cursor) - 1,
    has_more: start + maxCount < all.length
  }
}
