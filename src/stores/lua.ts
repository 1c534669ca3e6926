import { readFileSync } from 'node:fs'
import type { Redis } from 'ioredis'

/** `prelude`: a file of functions inserted after the script's first line (its `#!lua` flags). */
interface Script {
  file: string
  /** How many arguments are keys; absent, the caller passes the count first. */
  keys?: number
  prelude?: string
}

const job = (file: string): Script => ({ file, keys: 4, prelude: 'job-common.lua' })

/** Every Lua script of the Redis stores: one file each in ./lua/, its KEYS and ARGV in its header. */
const SCRIPTS = {
  quotaSync: { file: 'quota-sync.lua' },
  pageWrite: { file: 'page-write.lua', keys: 4 },
  pageUnlock: { file: 'page-unlock.lua', keys: 1 },
  pageRefresh: { file: 'page-refresh.lua', keys: 1 },
  rateLease: { file: 'rate-lease.lua', keys: 1 },
  jobClaim: job('job-claim.lua'),
  jobRenew: job('job-renew.lua'),
  jobCommit: job('job-commit.lua'),
  jobSetBack: job('job-set-back.lua'),
  jobRelease: job('job-release.lua'),
  jobCancel: job('job-cancel.lua')
} as const satisfies Record<string, Script>

export type ScriptName = keyof typeof SCRIPTS

const read = (file: string): string => readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8')

/**
 * Defines scripts as commands of `client` (once per client): ioredis sends each by its digest and
 * loads it on a server that does not know it yet, after a restart too.
 */
export function defineScripts(client: Redis, names: readonly ScriptName[]): void {
  for (const name of names) {
    if (name in client) continue
    const script: Script = SCRIPTS[name]
    const [flags = '', ...body] = read(script.file).split('\n')
    const lua = [flags, ...(script.prelude === undefined ? [] : [read(script.prelude)]), ...body].join('\n')
    client.defineCommand(name, script.keys === undefined ? { lua } : { numberOfKeys: script.keys, lua })
  }
}
