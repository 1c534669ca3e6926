import { readFile } from 'node:fs/promises'
import t from 'tap'
import { OPENAPI_PATH, openApiDocument } from '../src/openapi.js'
import { sandboxGateway } from './helpers/gateway.js'

t.test('the committed openapi/openapi.json is what the code generates (run `npm run openapi`)', async (t) => {
  t.equal(await readFile(OPENAPI_PATH, 'utf8'), await openApiDocument())
})

t.test('/openapi.json documents the followers operation with its security, problems and examples', async (t) => {
  const { app } = await sandboxGateway(t)
  const doc = (await app.inject('/openapi.json')).json()
  const operation = doc.paths['/v1/users/{username}/followers'].get
  t.same(operation.security, [{ bearerAuth: [] }, { apiKey: [] }])
  t.same(Object.keys(doc.components.securitySchemes), ['bearerAuth', 'apiKey'])
  t.same(Object.keys(operation.responses), ['200', '304', '400', '401', '403', '404', '429', '502', '503', '504'])
  t.ok(operation.responses['404'].content['application/problem+json'].schema.examples.length > 0)
  t.match(operation.responses['200'].content['application/json'].example, { username: String, followers: Array })
  t.same(Object.keys(operation.responses['200'].headers), ['ETag', 'Cache-Control', 'X-Cache', 'Age', 'Link'])
  const username = operation.parameters.find((p: { name: string }) => p.name === 'username')
  t.equal(username.schema.pattern, '^[A-Za-z0-9_.]{0,29}[A-Za-z0-9_]$')
})
