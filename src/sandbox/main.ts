import { loadSandboxConfig, SANDBOX_CREDENTIALS } from '../config.js'
import { startSandbox } from './sandbox.js'

const { host, port } = loadSandboxConfig()
const sandbox = await startSandbox({ ...SANDBOX_CREDENTIALS, host, port })
console.log(
  `TikTok Research API sandbox on ${sandbox.url} (synthetic data). Point a gateway at it with\n` +
    `  TIKTOK_API_BASE_URL=${sandbox.url} TIKTOK_CLIENT_KEY=${SANDBOX_CREDENTIALS.clientKey} ` +
    `TIKTOK_CLIENT_SECRET=${SANDBOX_CREDENTIALS.clientSecret} GATEWAY_ALLOW_ANONYMOUS=true npm start`
)
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void sandbox.close())
