import { Type, type Static } from 'typebox'

/** RFC 9457 problem details, with the upstream's code and log_id when TikTok caused the failure. */
export const Problem = Type.Object(
  {
    type: Type.String({ description: 'Identifies the kind of problem (a URN; see the README).' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    instance: Type.Optional(Type.String({ description: 'The request path.' })),
    request_id: Type.Optional(Type.String({ description: 'Quote it when reporting the problem.' })),
    code: Type.Optional(Type.String({ description: "TikTok's error code, when TikTok caused the failure." })),
    log_id: Type.Optional(Type.String({ description: "TikTok's log_id, for a support ticket with TikTok." }))
  },
  {
    examples: [
      {
        type: 'urn:tiktok-research-gateway:problem:user-not-found',
        title: 'TikTok user not found',
        status: 404,
        detail: 'TikTok has no user "nobody_here"',
        instance: '/v1/users/nobody_here/followers',
        request_id: 'req-1',
        code: 'invalid_params',
        log_id: '20261125063600ABCDEF'
      }
    ]
  }
)
export type Problem = Static<typeof Problem>

/** The documented problem responses of a route, by status. */
export function problemResponses(described: Record<number, string>) {
  return Object.fromEntries(
    Object.entries(described).map(([status, description]) => [
      status,
      { description, content: { 'application/problem+json': { schema: Problem } } }
    ])
  )
}
