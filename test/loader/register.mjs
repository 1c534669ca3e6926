// The tests' TypeScript loader: esbuild, with the generated code's lines kept. tsx (which the
// scripts use) minifies whitespace, so every file is one generated line and V8 coverage, mapped
// back line by line, counted one statement per file.
import { register } from 'node:module'

register('./hooks.mjs', import.meta.url)
