import envSchema from 'env-schema'
import { Type, type Static } from 'typebox'

const LogLevel = Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, {
  default: 'info',
  description: 'the least severe level written'
})

// Each variable's `description` is Markdown: docs/operations.md's configuration reference is generated
// from it by `npm run docs:config` (src/config-reference.ts), and a test fails when the two differ.
// The groups are that reference's sections; a variable belongs to exactly one.

const Upstream = {
  TIKTOK_CLIENT_KEY: Type.Optional(
    Type.String({ description: 'Research API client key. With neither key nor secret (and `NODE_ENV` not `production`) the built-in sandbox is used' })
  ),
  TIKTOK_CLIENT_SECRET: Type.Optional(Type.String({ description: 'Research API client secret; never logged or returned' })),
  TIKTOK_API_BASE_URL: Type.String({
    default: 'https://open.tiktokapis.com',
    description: 'the Research API origin, `http` or `https` (point it at `npm run sandbox` to test)'
  }),
  UPSTREAM_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 1, default: 3000, description: 'TCP/TLS connect timeout to TikTok' }),
  UPSTREAM_TIMEOUT_MS: Type.Integer({
    minimum: 1,
    default: 15000,
    description: 'bounds each attempt as a whole (connect, headers and the whole body); an abandoned attempt is retried or fails, and the next request loads afresh'
  }),
  UPSTREAM_MAX_BODY_BYTES: Type.Integer({
    minimum: 1024,
    default: 1024 * 1024,
    description: 'a TikTok reply larger than this is cut off as soon as it passes it (a 502)'
  }),
  UPSTREAM_RETRIES: Type.Integer({ minimum: 0, maximum: 5, default: 2, description: 'retries after a network error or 5xx' }),
  UPSTREAM_RETRY_AFTER_MAX_WAIT_SECONDS: Type.Integer({
    minimum: 0,
    default: 2,
    description: 'a TikTok 429 with a `Retry-After` up to this is waited out and retried once'
  }),
  BREAKER_FAILURE_THRESHOLD: Type.Integer({ minimum: 1, default: 5, description: 'failures in a row that open the circuit' }),
  BREAKER_COOLDOWN_SECONDS: Type.Integer({ minimum: 1, default: 30, description: 'how long the circuit stays open before a probe' }),
  SANDBOX_PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3100, description: 'port of the standalone sandbox (`npm run sandbox`)' })
}

const Consumers = {
  GATEWAY_API_KEYS: Type.String({
    default: '',
    description: 'consumer keys, `name:key,name:key`; the name appears in logs, the key never'
  }),
  GATEWAY_ADMIN_KEYS: Type.String({
    default: '',
    description: "admin consumer keys, `name:key,…`; they may do what consumers do and see every consumer's quota and export jobs"
  }),
  GATEWAY_ALLOW_ANONYMOUS: Type.Boolean({
    default: false,
    description:
      'allow requests without a key (as consumer `anonymous`). Required to start with real credentials and no keys. Sandbox mode without keys allows anonymous access'
  }),
  RATE_LIMIT_PER_MINUTE: Type.Integer({
    minimum: 1,
    default: 600,
    description: 'requests a minute per consumer, hits included, counted across all its routes together'
  })
}

const Quota = {
  DAILY_REQUEST_BUDGET: Type.Integer({ minimum: 0, default: 20000, description: "the team's upstream research calls per UTC day" }),
  CONSUMER_DAILY_BUDGET: Type.Integer({ minimum: 0, default: 5000, description: "each consumer's upstream research calls per UTC day" }),
  CONSUMER_DAILY_BUDGETS: Type.String({
    default: '',
    description: 'per-consumer overrides, `name:calls,…` (`anonymous` for requests without a key)'
  })
}

const Cache = {
  CACHE_MAX_BYTES: Type.Integer({
    minimum: 65536,
    default: 12 * 1024 * 1024,
    description:
      "byte budget of the page cache: about 1,700 pages of 100, a list of 170,000 accounts. Each MiB of budget costs the process about 1.3 MiB of RSS once full (the objects around each page, garbage not yet collected); the default keeps a gateway's peak RSS under 150 MB (143 MiB) during the longest export on both Node 20 and the image's Node 24, from 92 and 104 MiB idle (see [Memory](#memory)). Raise it where the memory limit allows"
  }),
  CACHE_TTL_LATEST_SECONDS: Type.Integer({ minimum: 1, default: 300, description: 'how long a page without `cursor` is kept' }),
  CACHE_TTL_HISTORY_SECONDS: Type.Integer({ minimum: 1, default: 86400, description: 'how long a page at a past `cursor` is kept' }),
  CACHE_TTL_PROFILE_SECONDS: Type.Integer({ minimum: 1, default: 3600, description: "how long a user's profile is kept" }),
  STALE_MAX_AGE_SECONDS: Type.Integer({
    minimum: 0,
    default: 86400,
    description: 'how long past expiry a page may still be served when TikTok fails'
  })
}

const Redis = {
  REDIS_URL: Type.Optional(
    Type.String({
      description:
        'a `redis://` or `rediss://` URL, e.g. `redis://127.0.0.1:6379/0`: quota, rate limits, export jobs and (without `REDIS_CACHE_URL`) pages shared by every replica; see [Several replicas](#several-replicas). Unset: all in process memory'
    })
  ),
  REDIS_CACHE_URL: Type.Optional(
    Type.String({ description: 'pages (and their locks) on a Redis of their own, which may evict (`allkeys-lru`); read only with `REDIS_URL`' })
  ),
  REDIS_KEY_PREFIX: Type.String({ default: 'tiktok-gw:', description: 'the start of every key the gateway writes' }),
  REDIS_CACHE_MAX_BYTES: Type.Integer({
    minimum: 65536,
    default: 256 * 1024 * 1024,
    description: "byte budget of the pages in Redis (each replica's memory keeps `CACHE_MAX_BYTES`)"
  }),
  REDIS_CONNECT_TIMEOUT_MS: Type.Integer({
    minimum: 1,
    default: 1000,
    description: 'connect timeout; also how long a replica waits for Redis at start-up before it starts degraded'
  }),
  REDIS_COMMAND_TIMEOUT_MS: Type.Integer({
    minimum: 1,
    default: 500,
    description: 'a command that takes longer fails, and the replica goes on without Redis for that request'
  }),
  REDIS_OUTAGE_BUDGET_SHARE: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 0.05,
    description: 'share of what was left of each budget that a replica may spend on its own while Redis is unavailable'
  })
}

const Exports = {
  EXPORT_DAILY_BUDGET: Type.Optional(
    Type.Integer({
      minimum: 0,
      description: 'upstream research calls all export jobs together may make per UTC day. Unset: half of `DAILY_REQUEST_BUDGET`'
    })
  ),
  EXPORT_RETENTION_SECONDS: Type.Integer({
    minimum: 1,
    default: 7 * 86400,
    description: 'how long a finished export job and its records are kept'
  }),
  EXPORT_CONCURRENCY: Type.Integer({ minimum: 1, default: 4, description: 'export jobs one replica runs at the same time' })
}

const Observability = {
  LOG_LEVEL: LogLevel,
  LOG_FLUSH_MS: Type.Integer({
    minimum: 0,
    maximum: 10000,
    default: 50,
    description:
      'log lines are written in batches, at least this often (and at once past 64 KB, and on shutdown); `0` writes each line at once. Each batch is one synchronous write to stdout, as pino\'s default destination does for every line: a stdout that stops being read holds the gateway up, as it would any pino service'
  }),
  // A bearer secret like the consumer keys: long enough not to be guessed.
  METRICS_TOKEN: Type.Optional(
    Type.String({
      minLength: 16,
      description:
        "when set, `/metrics` needs `Authorization: Bearer <METRICS_TOKEN>` (or an admin key); either way, only such a scraper sees per-consumer series"
    })
  )
}

const Server = {
  NODE_ENV: Type.String({ default: 'development', description: '`production` refuses to start without credentials' }),
  HOST: Type.String({ default: '127.0.0.1', description: 'listen address (`0.0.0.0` in the Docker image)' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'listen port' }),
  REQUEST_DEADLINE_MS: Type.Integer({
    minimum: 1,
    default: 30000,
    description: 'the longest a consumer waits for an answer; plus 5 s, the grace period of a shutdown'
  }),
  MAX_EVENT_LOOP_DELAY_MS: Type.Integer({
    minimum: 0,
    default: 1000,
    description: 'event loop delay above which requests get 503 (`0` turns load shedding off)'
  })
}

/** The variables by concern, in the order docs/operations.md lists them. */
export const ENV_GROUPS = [
  { title: 'Upstream (TikTok)', variables: Upstream },
  { title: 'Consumers and authentication', variables: Consumers },
  { title: 'Quota', variables: Quota },
  { title: 'Cache', variables: Cache },
  { title: 'Redis and replicas', variables: Redis },
  { title: 'Export jobs', variables: Exports },
  { title: 'Logging and metrics', variables: Observability },
  { title: 'Server', variables: Server }
] as const

/** Every variable the gateway reads, validated at start-up. */
export const EnvSchema = Type.Object({ ...Upstream, ...Consumers, ...Quota, ...Cache, ...Redis, ...Exports, ...Observability, ...Server })

type Env = Static<typeof EnvSchema>

export type LogLevel = Static<typeof LogLevel>

export interface Consumer {
  name: string
  key: string
  /** Admins see every consumer's quota. */
  admin: boolean
  /** Upstream calls this consumer may cause per UTC day. */
  dailyBudget: number
}

export interface UpstreamConfig {
  baseUrl: string
  clientKey: string
  clientSecret: string
  connectTimeoutMs: number
  /** Bounds each attempt as a whole: connect, headers and body. */
  timeoutMs: number
  maxBodyBytes: number
  retries: number
  /** A 429 whose Retry-After is at most this is waited out and retried once. */
  retryAfterMaxWaitSeconds: number
  breakerFailureThreshold: number
  breakerCooldownSeconds: number
}

export interface Config {
  host: string
  port: number
  logLevel: LogLevel
  /** How long log lines may wait in memory to be written as one batch; 0 writes each at once. */
  logFlushMs: number
  /** No TikTok credentials outside production: answer from the built-in sandbox. */
  sandbox: boolean
  upstream: UpstreamConfig
  consumers: Consumer[]
  allowAnonymous: boolean
  /** The daily budget of requests without a key. */
  anonymousDailyBudget: number
  cache: { maxBytes: number; ttlLatestSeconds: number; ttlHistorySeconds: number; ttlProfileSeconds: number; staleMaxAgeSeconds: number }
  dailyRequestBudget: number
  rateLimitPerMinute: number
  requestDeadlineMs: number
  maxEventLoopDelayMs: number
  /** When set, /metrics needs it (or an admin key); per-consumer series only go to such a scraper. */
  metricsToken: string | undefined
  exports: {
    /** Upstream research calls export jobs may make per UTC day, all jobs together. */
    dailyBudget: number
    /** How long a finished job and its records are kept. */
    retentionSeconds: number
    /** Jobs one replica runs at the same time. */
    concurrency: number
  }
  /** Shared state for several replicas; absent: everything stays in this process. */
  redis?: RedisConfig
}

export interface RedisConfig {
  /** Quota counters, rate limits, and pages unless `cacheUrl` is set. */
  url: string
  /** Pages (and their locks) on a Redis of their own, which may evict. */
  cacheUrl?: string
  keyPrefix: string
  /** Byte budget of the pages held in Redis. */
  cacheMaxBytes: number
  connectTimeoutMs: number
  commandTimeoutMs: number
  /** Share of the remaining budgets that each replica may spend on its own while Redis is unavailable. */
  outageBudgetShare: number
}

/** The consumer name of requests without a key, where anonymous access is allowed. */
export const ANONYMOUS = 'anonymous'

/** Credentials the built-in sandbox accepts; they never leave this machine. */
export const SANDBOX_CREDENTIALS = { clientKey: 'sandbox-client-key', clientSecret: 'sandbox-client-secret' }

export class ConfigError extends Error {
  override name = 'ConfigError'
}

function parseEnv<T>(schema: object, source: NodeJS.ProcessEnv): T {
  // An empty variable (FOO= in a compose file) means "not set", so its default applies.
  const data = Object.fromEntries(Object.entries(source).filter(([, value]) => value !== undefined && value !== ''))
  try {
    return envSchema<T>({ schema: structuredClone(schema), data, env: false })
  } catch (err) {
    throw new ConfigError(`invalid environment: ${(err as Error).message}`)
  }
}

/** Where `npm run sandbox` listens; it accepts SANDBOX_CREDENTIALS. */
export function loadSandboxConfig(source: NodeJS.ProcessEnv = process.env): { host: string; port: number } {
  const env = parseEnv<Pick<Env, 'HOST' | 'SANDBOX_PORT'>>(Type.Pick(EnvSchema, ['HOST', 'SANDBOX_PORT']), source)
  return { host: env.HOST, port: env.SANDBOX_PORT }
}

/** Reads and validates the environment; throws a ConfigError that names every offending variable. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const env = parseEnv<Env>(EnvSchema, source)

  const production = env.NODE_ENV === 'production'
  const missing = (['TIKTOK_CLIENT_KEY', 'TIKTOK_CLIENT_SECRET'] as const).filter((name) => env[name] === undefined)
  const sandbox = missing.length === 2 && !production
  if (missing.length > 0 && !sandbox) {
    const why = production ? 'NODE_ENV=production needs real TikTok credentials' : 'set both or neither (neither runs the sandbox)'
    throw new ConfigError(`missing ${missing.join(' and ')}: ${why}`)
  }

  const budgets = parseBudgets(env.CONSUMER_DAILY_BUDGETS)
  const consumers = parseConsumers(env, budgets)
  if (!sandbox && consumers.length === 0 && !env.GATEWAY_ALLOW_ANONYMOUS) {
    throw new ConfigError('GATEWAY_API_KEYS is empty: configure consumer keys (name:key,name:key) or set GATEWAY_ALLOW_ANONYMOUS=true')
  }

  return {
    host: env.HOST,
    port: env.PORT,
    logLevel: env.LOG_LEVEL,
    logFlushMs: env.LOG_FLUSH_MS,
    sandbox,
    upstream: {
      baseUrl: parseBaseUrl(env.TIKTOK_API_BASE_URL),
      clientKey: env.TIKTOK_CLIENT_KEY ?? SANDBOX_CREDENTIALS.clientKey,
      clientSecret: env.TIKTOK_CLIENT_SECRET ?? SANDBOX_CREDENTIALS.clientSecret,
      connectTimeoutMs: env.UPSTREAM_CONNECT_TIMEOUT_MS,
      timeoutMs: env.UPSTREAM_TIMEOUT_MS,
      maxBodyBytes: env.UPSTREAM_MAX_BODY_BYTES,
      retries: env.UPSTREAM_RETRIES,
      retryAfterMaxWaitSeconds: env.UPSTREAM_RETRY_AFTER_MAX_WAIT_SECONDS,
      breakerFailureThreshold: env.BREAKER_FAILURE_THRESHOLD,
      breakerCooldownSeconds: env.BREAKER_COOLDOWN_SECONDS
    },
    consumers,
    allowAnonymous: env.GATEWAY_ALLOW_ANONYMOUS || (sandbox && consumers.length === 0),
    anonymousDailyBudget: budgets.get(ANONYMOUS) ?? env.CONSUMER_DAILY_BUDGET,
    cache: {
      maxBytes: env.CACHE_MAX_BYTES,
      ttlLatestSeconds: env.CACHE_TTL_LATEST_SECONDS,
      ttlHistorySeconds: env.CACHE_TTL_HISTORY_SECONDS,
      ttlProfileSeconds: env.CACHE_TTL_PROFILE_SECONDS,
      staleMaxAgeSeconds: env.STALE_MAX_AGE_SECONDS
    },
    dailyRequestBudget: env.DAILY_REQUEST_BUDGET,
    rateLimitPerMinute: env.RATE_LIMIT_PER_MINUTE,
    requestDeadlineMs: env.REQUEST_DEADLINE_MS,
    maxEventLoopDelayMs: env.MAX_EVENT_LOOP_DELAY_MS,
    metricsToken: env.METRICS_TOKEN,
    ...(env.REDIS_URL !== undefined && {
      redis: {
        url: parseRedisUrl('REDIS_URL', env.REDIS_URL),
        cacheUrl: env.REDIS_CACHE_URL === undefined ? undefined : parseRedisUrl('REDIS_CACHE_URL', env.REDIS_CACHE_URL),
        keyPrefix: env.REDIS_KEY_PREFIX,
        cacheMaxBytes: env.REDIS_CACHE_MAX_BYTES,
        connectTimeoutMs: env.REDIS_CONNECT_TIMEOUT_MS,
        commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS,
        outageBudgetShare: env.REDIS_OUTAGE_BUDGET_SHARE
      }
    }),
    exports: {
      // Half the team's by default, so that interactive consumers keep quota while jobs run.
      dailyBudget: env.EXPORT_DAILY_BUDGET ?? Math.floor(env.DAILY_REQUEST_BUDGET / 2),
      retentionSeconds: env.EXPORT_RETENTION_SECONDS,
      concurrency: env.EXPORT_CONCURRENCY
    }
  }
}

function parseRedisUrl(variable: string, value: string): string {
  let url: URL | undefined
  try {
    url = new URL(value)
  } catch {
    url = undefined
  }
  // The URL may hold a password: never quote it back.
  if (url === undefined || (url.protocol !== 'redis:' && url.protocol !== 'rediss:')) throw new ConfigError(`${variable} is not a redis:// or rediss:// URL`)
  return value
}

function parseBaseUrl(value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new ConfigError(`TIKTOK_API_BASE_URL is not a URL: ${value}`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError(`TIKTOK_API_BASE_URL must be http(s): ${value}`)
  }
  return url.origin
}

/** `name:value` entries, as GATEWAY_API_KEYS, GATEWAY_ADMIN_KEYS and CONSUMER_DAILY_BUDGETS use them. */
function parsePairs(variable: string, value: string): Array<[string, string]> {
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map((entry, index) => {
      const colon = entry.indexOf(':')
      const name = entry.slice(0, colon).trim()
      const rest = entry.slice(colon + 1).trim()
      // The value (maybe a key) is never quoted back: the message points at the entry's position.
      if (colon < 1 || name === '' || rest === '') throw new ConfigError(`${variable} entry ${index + 1} is not name:value`)
      return [name, rest]
    })
}

function parseBudgets(value: string): Map<string, number> {
  return new Map(
    parsePairs('CONSUMER_DAILY_BUDGETS', value).map(([name, budget]) => {
      if (!/^\d+$/.test(budget)) throw new ConfigError(`CONSUMER_DAILY_BUDGETS: the budget of ${name} is not a whole number`)
      return [name, Number(budget)]
    })
  )
}

function parseConsumers(env: Env, budgets: Map<string, number>): Consumer[] {
  const consumers = [
    ...parsePairs('GATEWAY_API_KEYS', env.GATEWAY_API_KEYS).map(([name, key]) => ({ name, key, admin: false })),
    ...parsePairs('GATEWAY_ADMIN_KEYS', env.GATEWAY_ADMIN_KEYS).map(([name, key]) => ({ name, key, admin: true }))
  ].map((consumer) => ({ ...consumer, dailyBudget: budgets.get(consumer.name) ?? env.CONSUMER_DAILY_BUDGET }))
  for (const field of ['name', 'key'] as const) {
    if (new Set(consumers.map((consumer) => consumer[field])).size !== consumers.length) {
      throw new ConfigError(`GATEWAY_API_KEYS and GATEWAY_ADMIN_KEYS have a duplicate consumer ${field}`)
    }
  }
  return consumers
}
