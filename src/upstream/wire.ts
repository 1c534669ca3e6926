import { Type, type Static } from 'typebox'

/** The Research API's wire format, as documented; the sandbox speaks it too. */

export const TokenResponse = Type.Object({
  access_token: Type.String({ minLength: 1 }),
  expires_in: Type.Integer({ minimum: 1 }),
  token_type: Type.String()
})
export type TokenResponse = Static<typeof TokenResponse>

export const TokenError = Type.Object({
  error: Type.String(),
  error_description: Type.Optional(Type.String()),
  log_id: Type.Optional(Type.String())
})
export type TokenError = Static<typeof TokenError>

export const ApiError = Type.Object({
  code: Type.String(),
  message: Type.String(),
  log_id: Type.Optional(Type.String())
})
export type ApiError = Static<typeof ApiError>

export const UserFollower = Type.Object({
  username: Type.String(),
  display_name: Type.String()
})

export const FollowersData = Type.Object({
  user_followers: Type.Array(UserFollower),
  cursor: Type.Integer(),
  has_more: Type.Boolean()
})
export type FollowersData = Static<typeof FollowersData>

export interface FollowersRequest {
  username: string
  max_count: number
  /** Unix seconds: followers who followed on or before it; omitted means now. */
  cursor?: number
}
