import fc from 'fast-check'
import t from 'tap'
import { USERNAME_PATTERN } from '../src/schemas/followers.js'
import { sandboxGateway } from './helpers/gateway.js'

const USERNAME = new RegExp(USERNAME_PATTERN)

/** What the gateway must answer: 400 for invalid input, else 200 (or 403/404 for the sandbox's special users). */
function validInput(username: string, query: Record<string, string>): boolean {
  const keys = Object.keys(query)
  if (!USERNAME.test(username) || keys.some((key) => key !== 'max_count' && key !== 'cursor')) return false
  // Plain decimal digits only, in range: Ajv's number coercion ("20.0", "1e2", " 5") is not accepted.
  const inRange = (value: string | undefined, min: number, max: number) =>
    value === undefined || (/^(0|[1-9][0-9]*)$/.test(value) && Number(value) >= min && Number(value) <= max)
  return inRange(query.max_count, 1, 100) && inRange(query.cursor, 0, 4102444800)
}

t.test('fuzzed paths and queries only ever get 200 or a 4xx problem, and invalid input never reaches the upstream', async (t) => {
  const { app, sandbox } = await sandboxGateway(t, { RATE_LIMIT_PER_MINUTE: '1000000', CONSUMER_DAILY_BUDGET: '1000000', LOG_LEVEL: 'silent' })
  const username = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_.]{1,32}$/), fc.string({ maxLength: 40 }), fc.constantFrom('ghost_x', 'private_x', 'hidden_x', '.', 'a.'))
  const value = fc.oneof(fc.integer({ min: -5, max: 200 }).map(String), fc.string({ maxLength: 12 }), fc.constantFrom('1e3', '0x10', '20.0', '', ' 5', '+5', '05', 'Infinity', '1e309', '4102444800', '4102444801', '9007199254740993'))
  const query = fc.dictionary(fc.oneof(fc.constantFrom('max_count', 'cursor'), fc.string({ maxLength: 8 })), value, { maxKeys: 3 })

  await fc.assert(
    fc.asyncProperty(username, query, async (name, params) => {
      const before = sandbox.stats.followerCalls
      const search = new URLSearchParams(params).toString()
      const res = await app.inject(`/v1/users/${encodeURIComponent(name)}/followers${search ? `?${search}` : ''}`)
      // A dot segment is removed from the path before routing, as any URL client does: `/v1/users/./followers`
      // is the profile of a user named "followers", `/v1/users/../followers` no route; neither is a followers page.
      if (name === '.' || name === '..') return res.statusCode < 500 && res.json().followers === undefined && sandbox.stats.followerCalls === before
      if (res.statusCode === 200) {
        const body = res.json()
        return validInput(name, params) && Array.isArray(body.followers) && body.username === name.toLowerCase()
      }
      const problem = res.headers['content-type'] === 'application/problem+json; charset=utf-8' && res.statusCode >= 400 && res.statusCode < 500
      if (!validInput(name, params)) return problem && res.statusCode === 400 && sandbox.stats.followerCalls === before
      return problem && [403, 404].includes(res.statusCode)
    }),
    { numRuns: 3000 }
  )
  t.pass('3000 cases')
})
