// @ts-check
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

/** ESLint beside tsc: the type-checked rules catch what the compiler lets through, above all unhandled promises. */
export default tseslint.config(
  { ignores: ['dist/', 'coverage/', '.tap/', 'node_modules/'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // tap awaits its subtests itself and reports their failures: `t.test(...)` needs no await.
        { allowForKnownSafePromises: [{ from: 'package', package: '@tapjs/core', name: 'PromiseWithSubtest' }] }
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      // Fastify plugins and handlers, and in-memory stores behind an async interface, are async by contract.
      '@typescript-eslint/require-await': 'off'
    }
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Tests read `inject().json()` (typed `any`) and check its shape at run time with tap's matchers.
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off'
    }
  }
)
