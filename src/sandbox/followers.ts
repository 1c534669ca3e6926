import type { Relation } from '../schemas/export-jobs.js'
import type { Account } from '../schemas/followers.js'
import type { FollowersData, FollowingData } from '../upstream/wire.js'

/**
 * The followers and the followed accounts of sandbox users. An ordinary user has 40 to 300 of
 * each, built from a seed of the username. A user named `many` followed by a number (`many1000000`)
 * has exactly that many of each, computed per index so that a page of a million-account list
 * costs no more than a page of a short one. A user whose name starts with `repeats` answers each page
 * with a cursor that includes its last account again, as TikTok's cursors sometimes do.
 */

/** 2026-01-01T00:00:00Z: no sandbox follower followed later, so pages never change with the clock. */
const NEWEST_FOLLOW = 1_767_225_600

/** Seconds between two follows of a `many<N>` user: a million follows span about four months. */
const MANY_STEP_SECONDS = 10
const MANY_USER = /^many(\d{1,8})$/

const ADJECTIVES = ['amber', 'brisk', 'calm', 'dusty', 'eager', 'fuzzy', 'gentle', 'hazel', 'ivory', 'jolly', 'keen', 'lucky']
const NOUNS = ['otter', 'falcon', 'maple', 'comet', 'harbor', 'pixel', 'meadow', 'lantern', 'river', 'summit', 'willow', 'ember']

export interface SandboxAccount extends Account {
  /** Unix seconds; strictly decreasing along a list. */
  followed_at: number
}

/** A list of accounts, newest first, readable by index without holding all of it. */
interface AccountList {
  length: number
  /** The accounts from index `start` up to `end` (excluded). */
  slice(start: number, end: number): SandboxAccount[]
  /** The index of the first account who followed on or before `cursor`; `length` when there is none. */
  firstOnOrBefore(cursor: number): number
}

/** FNV-1a: a stable seed per username. */
export function seedOf(text: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return hash >>> 0
}

/** mulberry32: small, fast, deterministic. */
export function random(seed: number): () => number {
  let state = seed
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = Math.imul(state ^ (state >>> 15), state | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const pick = (words: readonly string[], random: number): string => words[Math.floor(random * words.length)] ?? ''

export const capitalise = (word: string): string => word.charAt(0).toUpperCase() + word.slice(1)

function account(next: () => number, index: number, followedAt: number): SandboxAccount {
  const adjective = pick(ADJECTIVES, next())
  const noun = pick(NOUNS, next())
  return { username: `${adjective}.${noun}${index}`, display_name: `${capitalise(adjective)} ${capitalise(noun)}`, followed_at: followedAt }
}

/** The seed of a user's list; followers keep the seed they always had, so their data never changes. */
const listSeed = (relation: Relation, username: string): number => seedOf(relation === 'followers' ? username : `following:${username}`)

function seededList(seed: number): SandboxAccount[] {
  const next = random(seed)
  const count = 40 + Math.floor(next() * 261)
  const accounts: SandboxAccount[] = []
  let followedAt = NEWEST_FOLLOW - Math.floor(next() * 600)
  for (let i = 0; i < count; i++) {
    accounts.push(account(next, i, followedAt))
    followedAt -= 1 + Math.floor(next() * 7200)
  }
  return accounts
}

function arrayList(accounts: SandboxAccount[]): AccountList {
  return {
    length: accounts.length,
    slice: (start, end) => accounts.slice(start, end),
    firstOnOrBefore: (cursor) => {
      const index = accounts.findIndex((follower) => follower.followed_at <= cursor)
      return index === -1 ? accounts.length : index
    }
  }
}

function formulaList(seed: number, length: number): AccountList {
  return {
    length,
    slice: (start, end) =>
      Array.from({ length: Math.max(0, Math.min(end, length) - start) }, (_, i) => {
        const index = start + i
        return account(random(seed ^ index), index, NEWEST_FOLLOW - index * MANY_STEP_SECONDS)
      }),
    firstOnOrBefore: (cursor) => Math.min(length, Math.max(0, Math.ceil((NEWEST_FOLLOW - cursor) / MANY_STEP_SECONDS)))
  }
}

function listOf(relation: Relation, username: string): AccountList {
  const many = MANY_USER.exec(username)
  const seed = listSeed(relation, username)
  return many ? formulaList(seed, Number(many[1])) : arrayList(seededList(seed))
}

/** Every account of a sandbox user's list, newest first (all of it: keep `many<N>` small here). */
export function sandboxAccounts(relation: Relation, username: string): SandboxAccount[] {
  const list = listOf(relation, username)
  return list.slice(0, list.length)
}

/** Every follower of a sandbox user, newest first, with strictly decreasing follow times. */
export const sandboxFollowers = (username: string): SandboxAccount[] => sandboxAccounts('followers', username)

/** How many accounts a sandbox user's list holds, without building it. */
export const sandboxCount = (relation: Relation, username: string): number => listOf(relation, username).length

/** The page of accounts who followed on or before `cursor`: the list, the cursor after its last account and has_more. */
function page(relation: Relation, username: string, maxCount: number, cursor: number) {
  const list = listOf(relation, username)
  const start = list.firstOnOrBefore(cursor)
  const end = Math.min(list.length, start + maxCount)
  const accounts = list.slice(start, end)
  const last = accounts.at(-1)
  if (last === undefined) return { accounts: [], cursor, has_more: false }
  return {
    accounts: accounts.map(({ username, display_name }) => ({ username, display_name })),
    cursor: username.startsWith('repeats') ? last.followed_at : last.followed_at - 1,
    has_more: end < list.length
  }
}

/** The page of followers who followed on or before `cursor`, as the Research API returns it. */
export function followersPage(username: string, maxCount: number, cursor: number): FollowersData {
  const { accounts, ...rest } = page('followers', username, maxCount, cursor)
  return { user_followers: accounts, ...rest }
}

/** The page of accounts the user followed on or before `cursor`, as the Research API returns it. */
export function followingPage(username: string, maxCount: number, cursor: number): FollowingData {
  const { accounts, ...rest } = page('following', username, maxCount, cursor)
  return { user_following: accounts, ...rest }
}
