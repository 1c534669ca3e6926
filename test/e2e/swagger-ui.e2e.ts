/**
 * Swagger UI in a real browser (Debian's Chromium, driven by playwright-core; never a browser
 * download): authorize with a consumer key, "Try it out" on the followers, following, profile and
 * export operations, execute.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { chromium, type Page } from 'playwright-core'
import { GATEWAY_API_KEYS, KEYS, sandboxGateway } from '../helpers/gateway.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const SCREENSHOTS = join(tmpdir(), 'tiktok-research-gateway-e2e')

async function openBrowser(t: Test) {
  const profile = await mkdtemp(join(tmpdir(), 'chromium-profile-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
    viewport: { width: 1280, height: 2000 }
  })
  t.teardown(async () => {
    await context.close()
    await rm(profile, { recursive: true, force: true })
  })
  return context.pages()[0] ?? (await context.newPage())
}

/** The GET operation documented at exactly `path`. */
const operation = (page: Page, path: string) => page.locator('.opblock-get').filter({ has: page.locator(`[data-path="${path}"]`) })

async function open(page: Page, path: string) {
  const block = operation(page, path)
  await block.locator('.opblock-summary').click()
  await block.locator('button.try-out__btn').click()
  return block
}

async function execute(page: Page, path: string, params: Record<string, string>) {
  const block = operation(page, path)
  const clear = block.locator('button.btn-clear')
  if (await clear.isVisible()) await clear.click()
  for (const [name, value] of Object.entries(params)) await block.locator(`tr[data-param-name="${name}"] input`).fill(value)
  await block.locator('button.execute').click()
  const response = block.locator('.live-responses-table .response').first()
  await response.waitFor()
  return {
    status: (await response.locator('.response-col_status').innerText()).trim(),
    body: await response.locator('.response-col_description pre.microlight').first().innerText(),
    headers: await response.locator('.response-col_description .microlight').last().innerText()
  }
}

// A browser on a shared 2-core machine: minutes, not the default 30 s.
t.setTimeout(300_000)
t.test('Swagger UI authorizes with a consumer key and executes the followers, following, profile and export operations', async (t) => {
  const { app } = await sandboxGateway(t, { GATEWAY_API_KEYS, LOG_LEVEL: 'warn' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const page = await openBrowser(t)
  await mkdir(SCREENSHOTS, { recursive: true })

  await page.goto(`${base}/docs/`)
  await page.locator('.swagger-ui .info .title').waitFor()
  t.match(await page.locator('.swagger-ui .info .title').innerText(), /TikTok Research Gateway/)

  await page.locator('.scheme-container button.authorize').click()
  const bearer = page.locator('.auth-container').filter({ hasText: 'bearerAuth' })
  await bearer.locator('input').fill(KEYS.alice)
  await bearer.locator('button.authorize').click()
  await page.locator('.dialog-ux button.close-modal').click()

  const FOLLOWERS = '/v1/users/{username}/followers'
  await open(page, FOLLOWERS)
  const ok = await execute(page, FOLLOWERS, { username: 'someone' })
  const okShot = join(SCREENSHOTS, 'swagger-ui-200.png')
  await page.screenshot({ path: okShot, fullPage: true })
  t.comment(`screenshot: ${okShot}`)
  t.equal(ok.status, '200')
  t.match(ok.body, /"followers"/)
  t.match(ok.body, /"display_name"/)
  t.match(ok.headers, /x-cache: MISS/i)

  const bad = await execute(page, FOLLOWERS, { username: 'ghost_user' })
  const badShot = join(SCREENSHOTS, 'swagger-ui-404.png')
  await page.screenshot({ path: badShot, fullPage: true })
  t.comment(`screenshot: ${badShot}`)
  t.equal(bad.status, '404')
  t.match(bad.body, /urn:tiktok-research-gateway:problem:user-not-found/)
  t.match(bad.headers, /content-type: application\/problem\+json/i)


  const FOLLOWING = '/v1/users/{username}/following'
  await open(page, FOLLOWING)
  const following = await execute(page, FOLLOWING, { username: 'someone' })
  t.equal(following.status, '200')
  t.match(following.body, /"following"/)

  const PROFILE = '/v1/users/{username}'
  await open(page, PROFILE)
  const profile = await execute(page, PROFILE, { username: 'many1000000' })
  t.equal(profile.status, '200')
  t.match(profile.body, /"follower_count": 1000000/)

  const EXPORT = '/v1/users/{username}/followers/export'
  await open(page, EXPORT)
  const exported = await execute(page, EXPORT, { username: 'someone', limit: '3' })
  const exportShot = join(SCREENSHOTS, 'swagger-ui-export.png')
  await page.screenshot({ path: exportShot, fullPage: true })
  t.comment(`screenshot: ${exportShot}`)
  t.equal(exported.status, '200')
  t.match(exported.headers, /content-type: application\/x-ndjson/i)
  t.match(exported.body, /"reason":\s*"limit"/)
  t.match(exported.body, /"resume_cursor":\s*\d+/)
})
