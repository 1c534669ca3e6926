import { Type, type Static } from 'typebox'

/** TikTok usernames: letters, digits, `_` and `.`, 1 to 30 characters, not ending in `.`. */
export const USERNAME_PATTERN = '^[A-Za-z0-9_.]{0,29}[A-Za-z0-9_]$'

export const DEFAULT_MAX_COUNT = 20

export const FollowersParams = Type.Object({
  username: Type.String({
    pattern: USERNAME_PATTERN,
    description: 'TikTok username (letters, digits, `_` and `.`; at most 30 characters; not ending in `.`). Case-insensitive.',
    examples: ['tiktok']
  })
})

export const FollowersQuerystring = Type.Object(
  {
    max_count: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: DEFAULT_MAX_COUNT, description: 'Followers per page.' })),
    cursor: Type.Optional(
      Type.Integer({
        minimum: 0,
        description:
          'Unix seconds: followers who followed on or before this time. Omit for the newest followers; ' +
          'pass the `cursor` of the previous page to get the next one.'
        // No example: Swagger UI would pre-fill it, and "Try it out" would fetch an old, empty page.
      })
    )
  },
  { additionalProperties: false }
)

export const Follower = Type.Object({
  username: Type.String({ examples: ['jane.doe'] }),
  display_name: Type.String({ examples: ['Jane Doe'] })
})

export const FollowersPage = Type.Object(
  {
    username: Type.String({ description: 'The user whose followers these are, lower-cased.' }),
    followers: Type.Array(Follower),
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
export type FollowersPage = Static<typeof FollowersPage>
