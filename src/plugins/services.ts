import fp from 'fastify-plugin'
import type { Dispatcher } from 'undici'
import type { Clock } from '../clock.js'
import { ANONYMOUS, type Config } from '../config.js'
import { Metrics } from '../metrics.js'
import { Exports } from '../services/exports.js'
import { ExportJobs } from '../services/export-jobs.js'
import { Pages } from '../services/pages.js'
import { Quota } from '../services/quota.js'
import { openStores } from '../stores/open-stores.js'
import type { Stores } from '../stores/stores.js'
import { ResearchApi } from '../upstream/research-api.js'

declare module 'fastify' {
  interface FastifyInstance {
    pages: Pages
    exports: Exports
    exportJobs: ExportJobs
    researchApi: ResearchApi
    quota: Quota
    metrics: Metrics
    stores: Stores
  }
}

export interface ServicesOptions {
  config: Config
  dispatcher?: Dispatcher
  clock: Clock
}

/** How soon a replica notices a job created elsewhere, one resuming after 00:00 UTC, or one a dead replica left. */
const EXPORT_SWEEP_MS = 5000
/** How often a failed token exchange is tried again in the background; readiness recovers within it. */
const TOKEN_RETRY_MS = 30_000

/** Wires the stores, the upstream client, the services and their metrics; closes them with the app. */
export default fp<ServicesOptions>(
  async (app, { config, dispatcher, clock }) => {
    const stores = await openStores({ config, logger: app.log, clock, onCacheWriteError: () => metrics.redisCacheWriteErrors.inc() })
    const budgets = new Map(config.consumers.map((consumer) => [consumer.name, consumer.dailyBudget]))
    const quota = new Quota({
      store: stores.counters,
      teamBudget: config.dailyRequestBudget,
      consumerBudget: (consumer) => budgets.get(consumer) ?? config.anonymousDailyBudget,
      exportBudget: config.exports.dailyBudget,
      consumers: [...budgets.keys(), ...(config.allowAnonymous ? [ANONYMOUS] : [])],
      now: clock.now
    })
    const api = new ResearchApi({ ...config.upstream, logger: app.log, dispatcher, clock, tokenRetryMs: TOKEN_RETRY_MS, onCall: (call) => metrics.upstreamCall(call) })
    const metrics = new Metrics({ quota: () => quota.report(), breakerState: () => api.breakerState, redis: () => stores.redis, exportJobs: () => stores.jobs.countByState() })

    app.decorate('stores', stores)
    app.decorate('quota', quota)
    app.decorate('metrics', metrics)
    app.decorate('researchApi', api)
    const pages = new Pages({
      api,
      store: stores.pages,
      quota,
      ttlLatestSeconds: config.cache.ttlLatestSeconds,
      ttlHistorySeconds: config.cache.ttlHistorySeconds,
      ttlProfileSeconds: config.cache.ttlProfileSeconds,
      deadlineMs: config.requestDeadlineMs,
      clock
    })
    app.decorate('pages', pages)
    app.decorate('exports', new Exports(pages, (outcome) => metrics.cacheRequest(outcome)))
    const exportJobs = new ExportJobs({
      store: stores.jobs,
      pages,
      concurrency: config.exports.concurrency,
      // A page waits at most the request deadline; twice that leaves room for the writes around it.
      leaseMs: 2 * config.requestDeadlineMs,
      sweepMs: EXPORT_SWEEP_MS,
      log: app.log,
      clock,
      onRecords: (count) => metrics.exportRecords.inc(count),
      onProblem: (problem) => metrics.exportJobProblems.inc({ problem })
    })
    app.decorate('exportJobs', exportJobs)
    app.addHook('onReady', () => exportJobs.start())
    // At SIGTERM each run stops after its page and hands its job back at once, while connections drain.
    app.addHook('preClose', (done) => {
      exportJobs.stop()
      done()
    })
    // A replica that started while Redis was down, or lost it for a while, re-checks its jobs once it is back.
    for (const connection of stores.redis) connection.onRecover(() => void exportJobs.recheck())
    app.addHook('onClose', async () => {
      app.exports.close()
      // Runs finish their page and hand their jobs back before the clients they use close.
      await exportJobs.close()
      await Promise.all([api.close(), stores.close()])
    })
  },
  { name: 'services' }
)
