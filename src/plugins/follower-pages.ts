import fp from 'fastify-plugin'
import type { Dispatcher } from 'undici'
import type { Config } from '../config.js'
import { FollowerPages } from '../services/follower-pages.js'
import { MemoryPageStore } from '../stores/memory-page-store.js'
import { ResearchApi } from '../upstream/research-api.js'

declare module 'fastify' {
  interface FastifyInstance {
    followerPages: FollowerPages
    researchApi: ResearchApi
  }
}

export interface FollowerPagesPluginOptions {
  config: Config
  dispatcher?: Dispatcher
  now?: () => number
}

/** Wires the upstream client, the page store and the service; closes them with the app. */
export default fp<FollowerPagesPluginOptions>(
  async (app, { config, dispatcher, now }) => {
    const api = new ResearchApi({ ...config.upstream, logger: app.log, dispatcher, now })
    const store = new MemoryPageStore(config.cache.maxBytes)
    app.decorate('researchApi', api)
    app.decorate(
      'followerPages',
      new FollowerPages({
        api,
        store,
        ttlLatestSeconds: config.cache.ttlLatestSeconds,
        ttlHistorySeconds: config.cache.ttlHistorySeconds
      })
    )
    app.addHook('onClose', async () => {
      await Promise.all([api.close(), store.close()])
    })
  },
  { name: 'follower-pages' }
)
