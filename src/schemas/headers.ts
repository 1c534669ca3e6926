import { Type } from 'typebox'

/** Response headers the gateway sends on more than one route, documented once. */

export const REQUEST_ID_HEADER = {
  'X-Request-Id': Type.String({
    description: "The request's id, on every response: the caller's own X-Request-Id when it sent a usable one. Quote it when reporting a problem.",
    examples: ['5dc2510a-fb00-442d-8db6-000000000001']
  })
}

/** Sent on every answer that counted against the per-consumer limit: after authentication, load shedding and validation. */
export const RATE_LIMIT_HEADERS = {
  'x-ratelimit-limit': Type.Integer({
    description:
      'Requests a minute this consumer may send (RATE_LIMIT_PER_MINUTE). With the two others on every answer that counted against ' +
      'the limit: not on a request refused before it (no valid key, load shedding, an invalid query or body)',
    examples: [600]
  }),
  'x-ratelimit-remaining': Type.Integer({ description: 'Requests left in the current minute', examples: [599] }),
  'x-ratelimit-reset': Type.Integer({ description: 'Seconds until the current minute ends and the count restarts', examples: [60] })
}

export const RETRY_AFTER_HEADER = {
  'Retry-After': Type.Integer({ description: 'Seconds to wait before trying again, when the gateway knows', examples: [60] })
}

export const WWW_AUTHENTICATE_HEADER = {
  'WWW-Authenticate': Type.String({ description: 'How to authenticate', examples: ['Bearer realm="tiktok-research-gateway"'] })
}

/** What every cached answer (a page, a profile) says of its copy. */
export const CACHE_HEADERS = {
  ETag: Type.String({ description: 'Send it back as If-None-Match to get 304' }),
  'Cache-Control': Type.String({ description: 'max-age: the seconds this copy stays fresh from now', examples: ['private, max-age=300'] }),
  'X-Cache': Type.String({ enum: ['HIT', 'MISS', 'STALE'], description: 'MISS: this request spent TikTok quota; STALE: TikTok failed and an expired copy was served' }),
  Age: Type.Integer({ description: 'On STALE only: seconds since TikTok sent the copy served' })
}
