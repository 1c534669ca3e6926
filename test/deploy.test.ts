import { readFile } from 'node:fs/promises'
import t from 'tap'
import { deployedRuntime } from '../bench/export.js'

const dockerfile = readFile(new URL('../Dockerfile', import.meta.url), 'utf8')

t.test('the Docker image starts Node with the same flags as npm start (the ones the export bench measures)', async (t) => {
  const cmd = /^CMD (\[.*\])$/m.exec(await dockerfile)?.[1]
  t.ok(cmd, 'the Dockerfile has a CMD in exec form')
  t.same(JSON.parse(cmd ?? '[]'), ['node', ...(await deployedRuntime()).flags, 'dist/server.js'])
})

t.test('the Docker image sets the environment npm start exports (malloc arenas: the export bench measures them too)', async (t) => {
  const { env } = await deployedRuntime()
  t.ok(Object.keys(env).length > 0, 'npm start exports a variable')
  const image = Object.fromEntries(
    [...(await dockerfile).matchAll(/^ENV (.*)$/gm)].flatMap(([, line]) => (line ?? '').split(' ').map((pair) => pair.split('=')))
  ) as Record<string, string>
  for (const [name, value] of Object.entries(env)) t.equal(image[name], value, name)
})
