import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { transformSync } from 'esbuild'

// Synchronous, and passing on what the next hook returns: the same hooks serve module.registerHooks()
// (in-thread, Node 22.15 and later) and module.register() (a loader thread, Node 20).

/**
 * A path ending in `x.js` (relative, absolute or a file URL, with the query tap's mocks add) names
 * `x.ts` where that file exists, as in TypeScript's ESM convention; rewritten before tap's module
 * mocks, keyed by the `.ts` file, see it.
 */
export function resolve(specifier, context, next) {
  const match = /^((?:\.|\/|file:).*)\.js(\?.*)?$/.exec(specifier)
  const twin = match && `${match[1]}.ts${match[2] ?? ''}`
  const exists = twin !== null && context.parentURL !== undefined && existsSync(fileURLToPath(new URL(twin.replace(/\?.*$/, ''), context.parentURL)))
  return next(exists ? twin : specifier, context)
}

export function load(url, context, next) {
  const file = new URL(url)
  if (file.protocol !== 'file:' || !file.pathname.endsWith('.ts')) return next(url, context)
  const path = fileURLToPath(file)
  const { code } = transformSync(readFileSync(path, 'utf8'), { loader: 'ts', format: 'esm', target: 'node20', sourcemap: 'inline', sourcefile: path })
  return { format: 'module', source: code, shortCircuit: true }
}
