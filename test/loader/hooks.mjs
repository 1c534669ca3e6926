import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { transform } from 'esbuild'

/** A path ending in `x.js` (relative, absolute or a file URL, with the query tap's mocks add) names `x.ts` here, as in TypeScript's ESM convention. */
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context)
  } catch (err) {
    const ts = specifier.replace(/^((?:\.|\/|file:).*)\.js(\?.*)?$/, '$1.ts$2')
    if (ts === specifier) throw err
    return next(ts, context)
  }
}

export async function load(url, context, next) {
  const file = new URL(url)
  if (file.protocol !== 'file:' || !file.pathname.endsWith('.ts')) return next(url, context)
  const path = fileURLToPath(file)
  const { code } = await transform(await readFile(path, 'utf8'), { loader: 'ts', format: 'esm', target: 'node20', sourcemap: 'inline', sourcefile: path })
  return { format: 'module', source: code, shortCircuit: true }
}
