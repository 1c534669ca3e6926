import { readFile } from 'node:fs/promises'
import t from 'tap'
import { deployedNodeFlags } from '../bench/export.js'

t.test('the Docker image starts Node with the same flags as npm start (the ones the export bench measures)', async (t) => {
  const dockerfile = await readFile(new URL('../Dockerfile', import.meta.url), 'utf8')
  const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1]
  t.ok(cmd, 'the Dockerfile has a CMD in exec form')
  t.same(JSON.parse(cmd ?? '[]'), ['node', ...(await deployedNodeFlags()), 'dist/server.js'])
})
