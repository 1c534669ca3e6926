import { Writable } from 'node:stream'
import t from 'tap'
import { Redis } from 'ioredis'
import pino from 'pino'
import { MockAgent } from 'undici'
import { loggingOptions } from '../src/access-log.js'
import { SANDBOX_CREDENTIALS } from '../src/config.js'
import { failure } from '../src/errors.js'
import { buildGateway, GATEWAY_API_KEYS, KEYS, sandboxGateway } from './helpers/gateway.js'
import { NEEDS_REDIS_SERVER, next, ownRedis } from './helpers/redis.js'

/** Issued tokens all start so; none may be logged or returned. */
const TOKEN_PREFIX = 'clt.'

t.test('no client secret, access token or consumer key appears in any log line or response', async (t) => {
  const { app, logs, sandbox } = await sandboxGateway(t, { GATEWAY_API_KEYS })
  const responses = []
  const requests = [
    { url: '/v1/users/someone/followers', headers: { authorization: `Bearer ${KEYS.alice}` } },
    { url: '/v1/users/someone/followers?cursor=1', headers: { 'x-api-key': KEYS.bob } },
    { url: '/v1/users/ghost/followers', headers: { authorization: `Bearer ${KEYS.alice}` } },
    { url: '/v1/users/bad-name/followers', headers: { authorization: `Bearer ${KEYS.alice}` } },
    { url: '/v1/users/someone/followers', headers: { authorization: `Bearer ${KEYS.alice}wrong` } },
    { url: '/v1/users/someone/followers', headers: { authorization: `Basic ${KEYS.alice}` } }
  ]
  for (const request of requests) responses.push(await app.inject(request))
  sandbox.revokeTokens()
  responses.push(await app.inject({ url: '/v1/users/other/followers', headers: { authorization: `Bearer ${KEYS.alice}` } }))

  t.ok(logs.length > 20, 'trace-level logs were captured')
  t.ok(sandbox.stats.tokenExchanges >= 2, 'tokens were exchanged and renewed')
  const everything = [...logs, ...responses.map((res) => JSON.stringify(res.headers) + res.body)]
  for (const secret of [SANDBOX_CREDENTIALS.clientSecret, KEYS.alice, KEYS.bob, TOKEN_PREFIX]) {
    t.notOk(everything.some((text) => text.includes(secret)), `never shows ${secret}`)
  }
})

t.test('a consumer key sent in the query string never reaches a log line; the known parameters still do', async (t) => {
  const { app, logs } = await sandboxGateway(t, { GATEWAY_API_KEYS })
  const key = encodeURIComponent(KEYS.alice)
  const urls = [
    `/v1/users/someone/followers?api_key=${key}`,
    `/v1/users/someone/followers?max_count=5&api_key=${key}&cursor=1`,
    `/v1/quota?api_key=${key}`,
    `/healthz?token=${key}`,
    `/no/such/route?api_key=${key}`,
    `/v1/users/%zz/followers?api_key=${key}`
  ]
  for (const url of urls) await app.inject({ url, headers: { 'x-api-key': KEYS.bob } })
  t.ok(logs.filter((line) => line.includes('"msg":"request"')).length >= urls.length - 1, 'every routed request has its access line')
  t.notOk(logs.some((line) => line.includes(KEYS.alice)), 'the key is in no log line')
  t.ok(logs.some((line) => line.includes('"url":"/v1/users/someone/followers?max_count=5&cursor=1"')), 'the known parameters are logged')
  t.ok(logs.some((line) => line.includes('"url":"/healthz"')))
})

t.test('rejected gateway credentials are a 503 that never echoes them', async (t) => {
  const agent = new MockAgent()
  agent.disableNetConnect()
  t.teardown(() => agent.close())
  agent
    .get('https://open.tiktokapis.com')
    .intercept({ path: '/v2/oauth/token/', method: 'POST' })
    .reply(401, { error: 'invalid_client', error_description: 'Client key or secret is incorrect.', log_id: 'LOG1' })
  const secret = 'the-real-secret-value'
  const { app, logs } = await buildGateway(
    t,
    { TIKTOK_CLIENT_KEY: 'the-client-key', TIKTOK_CLIENT_SECRET: secret, GATEWAY_ALLOW_ANONYMOUS: 'true' },
    { dispatcher: agent }
  )
  const res = await app.inject('/v1/users/someone/followers')
  t.equal(res.statusCode, 503)
  t.match(res.json(), { type: 'urn:tiktok-research-gateway:problem:credentials-rejected', code: 'invalid_client', log_id: 'LOG1' })
  t.notOk([...logs, res.body].some((text) => text.includes(secret) || text.includes('the-client-key')))
  const ready = await app.inject('/readyz')
  t.equal(ready.statusCode, 503, 'not ready while the credentials are rejected')
  t.equal(ready.headers['content-type'], 'application/problem+json; charset=utf-8')
})

t.test('a Redis that refuses the password logs the command it refused by name, never a password', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const redis = await ownRedis(t, ['--requirepass', 'sekret-pass-123'])
  const { app, logs } = await buildGateway(t, { REDIS_URL: redis.url.replace('//', '//:wrong-pass-456@'), REDIS_CONNECT_TIMEOUT_MS: '300' })
  await app.ready()
  const refused = logs.filter((line) => line.includes('WRONGPASS'))
  t.ok(refused.length > 0, 'the refusal is logged')
  for (const line of refused) {
    t.match(JSON.parse(line), { err: { command: { name: String } } }, 'with the command by name')
    t.notOk(line.includes('"args"'), 'and not its arguments')
  }
  t.notOk(logs.some((line) => line.includes('wrong-pass-456') || line.includes('sekret-pass-123')), 'no password in any line')
})

t.test('a failed Redis script logs its name, not its arguments (a page of records), wherever the error sits in what is logged', { skip: NEEDS_REDIS_SERVER }, async (t) => {
  const redis = await ownRedis(t)
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  await next(client, 'ready')
  const records = 'record,'.repeat(10_000)
  const scriptError = await client.eval("return redis.error_reply('ERR no such page')", 0, records).catch((error: unknown) => error)
  // A command refused as it is queued fails the transaction with an EXECABORT carrying it in `previousErrors`.
  const aborted = await client.multi().call('eval', records).exec().catch((error: unknown) => error)
  t.ok(scriptError instanceof Error && aborted instanceof Error, 'Redis refused both')

  const lines: string[] = []
  const stream = new Writable({ write: (chunk, _encoding, done) => (lines.push(String(chunk)), done()) })
  const { logger } = loggingOptions('info', stream)
  const log = pino(typeof logger === 'object' ? logger : {}, stream)
  log.error({ err: scriptError }, 'alone')
  log.error({ err: failure('GW_SHARED_STATE_UNAVAILABLE', 'Redis failed', { cause: scriptError }) }, 'as a cause')
  log.error({ err: Object.assign(new Error('wrapped'), { redis: scriptError }) }, 'in a field')
  log.error({ err: aborted }, 'in a transaction')
  t.equal(lines.length, 4)
  t.notOk(lines.some((line) => line.includes('record,')), 'no argument in any line')
  const [alone, , nested, transaction] = lines.map((line) => JSON.parse(line) as unknown)
  t.match(alone, { err: { command: { name: 'eval' } } })
  t.match(nested, { err: { redis: { command: { name: 'eval' } } } })
  t.match(transaction, { err: { previousErrors: [{ command: { name: 'eval' } }] } })
})
