import { Type, type Static } from 'typebox'
import { Cursor, MaxCount, QueryString } from './query.js'
import { named, ref } from './named.js'

/** TikTok usernames: letters, digits, `_` and `.`, 1 to 30 characters, not ending in `.`. */
export const USERNAME_PATTERN = '^[A-Za-z0-9_.]{0,29}[A-Za-z0-9_]$'

export const FollowersParams = Type.Object({
  username: Type.String({
    pattern: USERNAME_PATTERN,
    description: 'TikTok username (letters, digits, `_` and `.`; at most 30 characters; not ending in `.`). Case-insensitive.',
    examples: ['tiktok']
  })
})

export const FollowersQuerystring = QueryString({
  max_count: Type.Optional(MaxCount('Followers')),
  cursor: Type.Optional(Cursor('followers who followed'))
})

export const Follower = named(
  'Follower',
  Type.Object({
    username: Type.String({ examples: ['jane.doe'] }),
    display_name: Type.String({ examples: ['Jane Doe'] })
  })
)
/** An account of either list, as pages, exports and job records hold it. */
export type Account = Static<typeof Follower>

export const FollowersPage = named(
  'FollowersPage',
  Type.Object(
    {
      username: Type.String({ description: 'The user whose followers these are, lower-cased.' }),
      followers: Type.Array(ref(Follower)),
      cursor: Type.Integer({ description: 'Pass as `cursor` to get the next page.' }),
      has_more: Type.Boolean({ description: 'Whether a next page exists.' })
    },
    {
      examples: [
        {
          username: 'tiktok',
          followers: [{ username: 'jane.doe', display_name: 'Jane Doe' }],
          cursor: 1735689000,
          has_more: true
        }
      ]
    }
  )
)
export type FollowersPage = Static<typeof FollowersPage>
