import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { startSandbox } from './sandbox/sandbox.js'

/** Time after the request deadline for the last answers to go out and the app to close. */
const SHUTDOWN_MARGIN_MS = 5_000

let config: Config
try {
  config = loadConfig()
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  console.error(`tiktok-research-gateway: ${err.message}`)
  process.exit(1)
}

const sandbox = config.sandbox ? await startSandbox({ ...config.upstream, host: '127.0.0.1', port: 0 }) : undefined
if (sandbox) config = { ...config, upstream: { ...config.upstream, baseUrl: sandbox.url } }

const app = await buildApp({ config })
if (sandbox) {
  app.addHook('onClose', () => sandbox.close())
  app.log.warn(
    { upstream: sandbox.url },
    'SANDBOX MODE: no TikTok credentials are set, so every answer comes from the built-in sandbox and is synthetic. ' +
      'Set TIKTOK_CLIENT_KEY and TIKTOK_CLIENT_SECRET to use the real Research API.'
  )
}

// Every request ends by its deadline (answered, or a 504 problem), so the grace period covers the
// deadline plus time to write the last answers and close the upstream connections and stores.
const graceMs = config.requestDeadlineMs + SHUTDOWN_MARGIN_MS
closeWithGrace({ delay: graceMs }, async ({ signal, err }) => {
  if (err) app.log.error({ err, graceMs }, 'shutting down after an error')
  else app.log.info({ signal, graceMs }, 'shutting down')
  await app.close()
})

await app.listen({ host: config.host, port: config.port })
