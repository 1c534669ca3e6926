import pino from 'pino'
import t, { type Test } from 'tap'
import { ExportJobs } from '../../src/services/export-jobs.js'
import type { AccountPage } from '../../src/services/pages.js'
import { MemoryJobStore } from '../../src/stores/memory-job-store.js'
import { readingClock } from '../helpers/clock.js'

const NOW = Date.parse('2027-03-14T18:00:00Z')
/** Far more pages than any test here needs: a runner past it is spinning. */
const SPIN_GUARD = 1000

/** Export jobs on an in-memory store, over pages a test scripts by cursor. */
function jobs(t: Test, page: (cursor: number | undefined, call: number) => AccountPage) {
  const store = new MemoryJobStore(86_400_000, () => NOW)
  let calls = 0
  const service = new ExportJobs({
    store,
    pages: {
      accounts: async (_relation, { cursor }) => {
        if (++calls > SPIN_GUARD) throw new Error('the job kept asking for pages')
        return page(cursor, calls)
      }
    },
    concurrency: 1,
    leaseMs: 60_000,
    sweepMs: 60_000,
    log: pino({ level: 'silent' }),
    clock: readingClock(() => NOW)
  })
  t.teardown(() => service.close())
  return { service, calls: () => calls }
}

const account = (n: number) => ({ username: `user${n}`, display_name: `User ${n}` })
const OWNER = { consumer: 'alice', admin: false }

for (const [name, page] of [
  ['an empty page with has_more', (): AccountPage => ({ accounts: [], cursor: 5, hasMore: true, outcome: 'hit' })],
  ['the same accounts again at the same cursor', (): AccountPage => ({ accounts: [account(1), account(2)], cursor: 5, hasMore: true, outcome: 'hit' })]
] as const) {
  t.test(`a job whose list keeps answering ${name} fails after a few pages with a clear error, instead of spinning`, async (t) => {
    const { service, calls } = jobs(t, page)
    const { id } = await service.create('alice', { username: 'looping', relation: 'followers' })
    await service.idle()
    t.match(await service.get(id, OWNER), { state: 'failed', error: /without a new account/ })
    t.ok(calls() <= 4, `${calls()} pages asked`)
  })
}

t.test('a job over many cached pages yields to the event loop between pages', async (t) => {
  let ticked = false
  let pageWhenTicked = 0
  const { service } = jobs(t, (cursor, call) => {
    if (ticked && pageWhenTicked === 0) pageWhenTicked = call
    const at = cursor ?? 50
    return { accounts: [account(at)], cursor: at - 1, hasMore: at > 1, outcome: 'hit' }
  })
  setImmediate(() => (ticked = true))
  const { id } = await service.create('alice', { username: 'long', relation: 'followers' })
  await service.idle()
  t.match(await service.get(id, OWNER), { state: 'done', records: 50 })
  t.ok(pageWhenTicked > 0 && pageWhenTicked <= 3, `the loop turned by page ${pageWhenTicked}`)
})
