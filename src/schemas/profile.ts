import { Type, type Static } from 'typebox'
import { named } from './named.js'

/** Query User Info's fields, each passed on as TikTok gives it: the gateway asks for every one. */
export const PROFILE_FIELDS = {
  display_name: Type.String(),
  bio_description: Type.String(),
  avatar_url: Type.String(),
  is_verified: Type.Boolean(),
  follower_count: Type.Integer(),
  following_count: Type.Integer(),
  likes_count: Type.Integer(),
  video_count: Type.Integer(),
  bio_url: Type.String()
}

export const UserProfile = named(
  'UserProfile',
  Type.Object(
    {
      username: Type.String({ description: 'Lower-cased.' }),
      ...PROFILE_FIELDS
    },
    {
      examples: [
        {
          username: 'tiktok',
          display_name: 'TikTok',
          bio_description: 'One TikTok can make a big impact',
          avatar_url: 'https://p16-sign.example/tiktok.jpeg',
          is_verified: true,
          follower_count: 91200000,
          following_count: 1,
          likes_count: 421000000,
          video_count: 1240,
          bio_url: 'https://www.tiktok.com/'
        }
      ]
    }
  )
)
export type UserProfile = Static<typeof UserProfile>
