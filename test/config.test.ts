import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'

const LIVE = { TIKTOK_CLIENT_KEY: 'live-key', TIKTOK_CLIENT_SECRET: 'live-secret' }

t.test('no credentials outside production runs the sandbox with anonymous access and documented defaults', async (t) => {
  const config = loadConfig({})
  t.equal(config.sandbox, true)
  t.equal(config.allowAnonymous, true)
  t.match(config, {
    host: '127.0.0.1',
    port: 3000,
    logLevel: 'info',
    logFlushMs: 50,
    upstream: { baseUrl: 'https://open.tiktokapis.com' },
    cache: { maxBytes: 12 * 1024 * 1024, ttlLatestSeconds: 300, ttlHistorySeconds: 86400 }
  })
})

t.test('production without credentials fails naming the missing variables', async (t) => {
  t.throws(() => loadConfig({ NODE_ENV: 'production' }), new ConfigError('missing TIKTOK_CLIENT_KEY and TIKTOK_CLIENT_SECRET: NODE_ENV=production needs real TikTok credentials'))
  t.throws(() => loadConfig({ NODE_ENV: 'production', TIKTOK_CLIENT_KEY: 'k', GATEWAY_API_KEYS: 'a:b' }), { message: /^missing TIKTOK_CLIENT_SECRET:/ })
})

t.test('one credential without the other is an error in any environment', async (t) => {
  t.throws(() => loadConfig({ TIKTOK_CLIENT_SECRET: 's' }), { message: /^missing TIKTOK_CLIENT_KEY: set both or neither/ })
})

t.test('real credentials need consumer keys unless anonymous access is explicitly allowed', async (t) => {
  t.throws(() => loadConfig(LIVE), { message: /GATEWAY_API_KEYS is empty/ })
  t.equal(loadConfig({ ...LIVE, GATEWAY_ALLOW_ANONYMOUS: 'true' }).allowAnonymous, true)
  const config = loadConfig({ ...LIVE, GATEWAY_API_KEYS: 'alice:k1, bob:k2' })
  t.same(config.consumers, [
    { name: 'alice', key: 'k1', admin: false, dailyBudget: 5000 },
    { name: 'bob', key: 'k2', admin: false, dailyBudget: 5000 }
  ])
  t.equal(config.allowAnonymous, false)
  t.equal(config.sandbox, false)
})

t.test('consumer keys given in sandbox mode are required', async (t) => {
  t.equal(loadConfig({ GATEWAY_API_KEYS: 'alice:k1' }).allowAnonymous, false)
})

t.test('malformed values are rejected with the variable named and no key echoed', async (t) => {
  t.throws(() => loadConfig({ GATEWAY_API_KEYS: 'alice:k1,secretvalue' }), { message: 'GATEWAY_API_KEYS entry 2 is not name:value' })
  t.throws(() => loadConfig({ GATEWAY_API_KEYS: 'alice:k1,alice:k2' }), { message: 'GATEWAY_API_KEYS and GATEWAY_ADMIN_KEYS have a duplicate consumer name' })
  t.throws(() => loadConfig({ GATEWAY_API_KEYS: 'alice:k1', GATEWAY_ADMIN_KEYS: 'root:k1' }), {
    message: 'GATEWAY_API_KEYS and GATEWAY_ADMIN_KEYS have a duplicate consumer key'
  })
  t.throws(() => loadConfig({ CONSUMER_DAILY_BUDGETS: 'alice:lots' }), { message: /CONSUMER_DAILY_BUDGETS: the budget of alice/ })
  t.throws(() => loadConfig({ PORT: 'eighty' }), { message: /PORT/ })
  t.throws(() => loadConfig({ LOG_LEVEL: 'loud' }), { message: /LOG_LEVEL/ })
  t.throws(() => loadConfig({ CACHE_TTL_LATEST_SECONDS: '0' }), { message: /CACHE_TTL_LATEST_SECONDS/ })
  t.throws(() => loadConfig({ TIKTOK_API_BASE_URL: 'ftp://example' }), { message: /TIKTOK_API_BASE_URL must be http/ })
})

t.test('an empty variable counts as unset', async (t) => {
  const config = loadConfig({ PORT: '', TIKTOK_CLIENT_KEY: '', TIKTOK_CLIENT_SECRET: '' })
  t.equal(config.port, 3000)
  t.equal(config.sandbox, true)
})

t.test('per-consumer budgets override CONSUMER_DAILY_BUDGET, admins come from GATEWAY_ADMIN_KEYS', async (t) => {
  const config = loadConfig({
    GATEWAY_API_KEYS: 'alice:k1,bob:k2',
    GATEWAY_ADMIN_KEYS: 'ops:k3',
    CONSUMER_DAILY_BUDGET: '100',
    CONSUMER_DAILY_BUDGETS: 'bob:7,anonymous:3',
    DAILY_REQUEST_BUDGET: '1000'
  })
  t.same(
    config.consumers.map(({ name, admin, dailyBudget }) => [name, admin, dailyBudget]),
    [['alice', false, 100], ['bob', false, 7], ['ops', true, 100]]
  )
  t.equal(config.anonymousDailyBudget, 3)
  t.equal(config.dailyRequestBudget, 1000)
})

t.test('METRICS_TOKEN is optional, and at least 16 characters when set', async (t) => {
  t.equal(loadConfig({}).metricsToken, undefined)
  t.equal(loadConfig({ METRICS_TOKEN: 'a-long-enough-token' }).metricsToken, 'a-long-enough-token')
  t.throws(() => loadConfig({ METRICS_TOKEN: 'short-token' }), { name: 'ConfigError', message: /METRICS_TOKEN/ })
})

t.test('REDIS_URL turns on shared state with documented defaults; a bad URL is refused without quoting it', async (t) => {
  t.equal(loadConfig({}).redis, undefined, 'in memory without REDIS_URL')
  t.same(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379/0' }).redis, {
    url: 'redis://127.0.0.1:6379/0',
    cacheUrl: undefined,
    keyPrefix: 'tiktok-gw:',
    cacheMaxBytes: 256 * 1024 * 1024,
    connectTimeoutMs: 1000,
    commandTimeoutMs: 500,
    outageBudgetShare: 0.05
  })
  t.throws(() => loadConfig({ REDIS_URL: 'http://user:secret@host' }), new ConfigError('REDIS_URL is not a redis:// or rediss:// URL'))
  t.throws(() => loadConfig({ REDIS_URL: 'redis://h', REDIS_OUTAGE_BUDGET_SHARE: '2' }), { message: /REDIS_OUTAGE_BUDGET_SHARE/ })
})
