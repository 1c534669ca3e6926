import type { UserInfoData } from '../upstream/wire.js'
import { capitalise, random, sandboxCount, seedOf } from './followers.js'

const TOPICS = ['cooking', 'travel', 'science', 'music', 'football', 'painting', 'gardening', 'chess']

/** A sandbox user's profile; the counts of followers and following match the lists the sandbox pages through. */
export function sandboxUserInfo(username: string): UserInfoData {
  const next = random(seedOf(`info:${username}`))
  const topic = TOPICS[Math.floor(next() * TOPICS.length)]
  return {
    display_name: username.split(/[._]/).filter(Boolean).map(capitalise).join(' '),
    bio_description: `Synthetic sandbox account about ${topic}`,
    avatar_url: `https://sandbox.invalid/avatars/${username}.jpeg`,
    is_verified: next() < 0.1,
    follower_count: sandboxCount('followers', username),
    following_count: sandboxCount('following', username),
    likes_count: Math.floor(next() * 5_000_000),
    video_count: Math.floor(next() * 2_000),
    bio_url: `https://sandbox.invalid/${username}`
  }
}
