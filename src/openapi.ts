import { writeFile } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'
import { buildApp } from './app.js'
import { loadConfig } from './config.js'

export const OPENAPI_PATH = new URL('../openapi/openapi.json', import.meta.url)

/** The OpenAPI document as the code describes it, formatted as it is committed. */
export async function openApiDocument(): Promise<string> {
  const app = await buildApp({ config: loadConfig({ LOG_LEVEL: 'silent' }) })
  try {
    await app.ready()
    return JSON.stringify(app.swagger(), null, 2) + '\n'
  } finally {
    await app.close()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await writeFile(OPENAPI_PATH, await openApiDocument())
  console.log(`wrote ${OPENAPI_PATH.pathname}`)
}
