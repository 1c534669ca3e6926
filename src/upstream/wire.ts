import { Type, type Static } from 'typebox'
import Compile from 'typebox/compile'
import { PROFILE_FIELDS } from '../schemas/profile.js'
import { MAX_CURSOR } from '../schemas/query.js'

/**
 * The Research API's wire format, as documented; the sandbox speaks it too. Replies are checked
 * with compiled validators: the dynamic checker was a tenth of a cache miss's CPU.
 */

const TokenResponse = Type.Object({
  // Visible ASCII only: a token that could not travel in a header is refused here, before any call is charged.
  access_token: Type.String({ pattern: '^[\\x21-\\x7E]+$' }),
  expires_in: Type.Integer({ minimum: 1 }),
  token_type: Type.String()
})

const TokenError = Type.Object({
  error: Type.String(),
  error_description: Type.Optional(Type.String()),
  log_id: Type.Optional(Type.String())
})

const ApiError = Type.Object({
  code: Type.String(),
  message: Type.String(),
  log_id: Type.Optional(Type.String())
})
export type ApiError = Static<typeof ApiError>

const UserFollower = Type.Object({
  username: Type.String(),
  display_name: Type.String()
})

const FollowersData = Type.Object({
  user_followers: Type.Array(UserFollower),
  cursor: Type.Integer({ minimum: 0, maximum: MAX_CURSOR }),
  has_more: Type.Boolean()
})
export type FollowersData = Static<typeof FollowersData>

const FollowingData = Type.Object({
  user_following: Type.Array(UserFollower),
  cursor: Type.Integer({ minimum: 0, maximum: MAX_CURSOR }),
  has_more: Type.Boolean()
})
export type FollowingData = Static<typeof FollowingData>

/** Query User Info's fields; the gateway asks for all of them. */
export const USER_INFO_FIELDS = Object.keys(PROFILE_FIELDS) as Array<keyof typeof PROFILE_FIELDS>

const UserInfoData = Type.Object(PROFILE_FIELDS)
export type UserInfoData = Static<typeof UserInfoData>

/** Query User Followers and Query User Following take the same body. */
export interface ListRequest {
  username: string
  max_count: number
  /** Unix seconds: accounts that followed on or before it; omitted means now. */
  cursor?: number
}

export const wire = {
  tokenResponse: Compile(TokenResponse),
  tokenError: Compile(TokenError),
  apiError: Compile(ApiError),
  followersData: Compile(FollowersData),
  followingData: Compile(FollowingData),
  userInfoData: Compile(UserInfoData)
}
