// The tests' TypeScript loader: esbuild, with the generated code's lines kept. tsx (which the
// scripts use) minifies whitespace, so every file is one generated line and V8 coverage, mapped
// back line by line, counted one statement per file. In-thread hooks where Node has them, as tap's
// module mocks use there: hooks of the two kinds would not see each other's rewrites.
import * as nodeModule from 'node:module'
import * as hooks from './hooks.mjs'

if (nodeModule.registerHooks) nodeModule.registerHooks(hooks)
else nodeModule.register('./hooks.mjs', import.meta.url)
