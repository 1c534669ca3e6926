import { Type, type Static } from 'typebox'
import { Follower } from './followers.js'
import { named, ref } from './named.js'
import { Cursor, MaxCount, QueryString } from './query.js'

export const FollowingQuerystring = QueryString({
  max_count: Type.Optional(MaxCount('Accounts')),
  cursor: Type.Optional(Cursor('accounts the user followed'))
})

export const FollowingPage = named(
  'FollowingPage',
  Type.Object(
    {
      username: Type.String({ description: 'The user who follows these accounts, lower-cased.' }),
      following: Type.Array(ref(Follower)),
      cursor: Type.Integer({ description: 'Pass as `cursor` to get the next page.' }),
      has_more: Type.Boolean({ description: 'Whether a next page exists.' })
    },
    {
      examples: [
        {
          username: 'tiktok',
          following: [{ username: 'jane.doe', display_name: 'Jane Doe' }],
          cursor: 1735689000,
          has_more: true
        }
      ]
    }
  )
)
export type FollowingPage = Static<typeof FollowingPage>
