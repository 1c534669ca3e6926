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

/**
 * npm forwards these to the server (@npmcli/run-script), so one sent to the whole process group
 * (systemd's default KillMode, Ctrl-C in a terminal) arrives twice within milliseconds. A signal this
 * soon after the close began is that same one; a later one is someone insisting, and exits at once.
 */
const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM'] as const
const REPEAT_SIGNAL_WINDOW_MS = 1_000

// Every request ends by its deadline (answered, or a 504 problem), so the grace period covers the
// deadline plus time to write the last answers and close the upstream connections and stores.
const graceMs = config.requestDeadlineMs + SHUTDOWN_MARGIN_MS
/** When the close began, on the monotonic clock, whatever began it. */
let closingSince: number | undefined
let signalled: NodeJS.Signals | undefined
// close-with-grace exits 1 on any second signal, so the forwarded ones are handled below instead.
const { close } = closeWithGrace({ delay: graceMs, skip: [...FORWARDED_SIGNALS] }, async ({ err }) => {
  // Begun by an error, or by the event loop running out.
  closingSince ??= performance.now()
  if (err) app.log.error({ err, graceMs }, 'shutting down after an error')
  else app.log.info({ signal: signalled, graceMs }, 'shutting down')
  await app.close()
})
for (const name of FORWARDED_SIGNALS) {
  process.on(name, (signal: NodeJS.Signals) => {
    if (closingSince === undefined) {
      closingSince = performance.now()
      signalled = signal
      close()
    } else if (performance.now() - closingSince >= REPEAT_SIGNAL_WINDOW_MS) {
      // Straight to stderr, as close-with-grace's own messages: a log line could still sit in its batch at the exit.
      console.error(`second ${signal}, exiting`)
      process.exit(1)
    }
  })
}

await app.listen({ host: config.host, port: config.port })
