/**
 * Swagger UI in a real browser (Debian's Chromium, driven by playwright-core; never a browser
 * download): authorize with a consumer key, "Try it out" on the followers operation, execute.
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

async function tryFollowers(page: Page, username: string) {
  const clear = page.locator('.opblock-get button.btn-clear')
  if (await clear.isVisible()) await clear.click()
  await page.locator('tr[data-param-name="username"] input').fill(username)
  await page.locator('.opblock-get button.execute').click()
  const response = page.locator('.live-responses-table .response').first()
  await response.waitFor()
  return {
    status: (await response.locator('.response-col_status').innerText()).trim(),
    body: await response.locator('.response-col_description pre.microlight').first().innerText(),
    headers: await response.locator('.response-col_description .microlight').last().innerText()
  }
}

t.test('Swagger UI authorizes with a consumer key and executes the followers operation', async (t) => {
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

  await page.locator('.opblock-get .opblock-summary').filter({ hasText: '/v1/users/{username}/followers' }).click()
  await page.locator('.opblock-get button.try-out__btn').click()

  const ok = await tryFollowers(page, 'someone')
  const okShot = join(SCREENSHOTS, 'swagger-ui-200.png')
  await page.screenshot({ path: okShot, fullPage: true })
  t.comment(`screenshot: ${okShot}`)
  t.equal(ok.status, '200')
  t.match(ok.body, /"followers"/)
  t.match(ok.body, /"display_name"/)
  t.match(ok.headers, /x-cache: MISS/i)

  const bad = await tryFollowers(page, 'ghost_user')
  const badShot = join(SCREENSHOTS, 'swagger-ui-404.png')
  await page.screenshot({ path: badShot, fullPage: true })
  t.comment(`screenshot: ${badShot}`)
  t.equal(bad.status, '404')
  t.match(bad.body, /urn:tiktok-research-gateway:problem:user-not-found/)
  t.match(bad.headers, /content-type: application\/problem\+json/i)
})
