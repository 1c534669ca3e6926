import { readdir, readFile } from 'node:fs/promises'
import t from 'tap'
import { CONFIG_END, CONFIG_START, OPERATIONS_PATH, renderConfigReference, withConfigReference } from '../src/config-reference.js'
import { ENV_GROUPS, EnvSchema } from '../src/config.js'
import { failure, isFailureKind, problemKinds, traitsOf } from '../src/errors.js'

const ROOT = new URL('../', import.meta.url)
const DOCS = new URL('docs/', ROOT)
const markdownFiles = [new URL('README.md', ROOT), ...(await readdir(DOCS)).filter((name) => name.endsWith('.md')).map((name) => new URL(name, DOCS))]
const grouped = ENV_GROUPS.flatMap(({ variables }) => Object.entries(variables as Record<string, { description?: string }>))

t.test('the configuration reference in docs/operations.md is what src/config.ts generates (run `npm run docs:config`)', async (t) => {
  const operations = await readFile(OPERATIONS_PATH, 'utf8')
  t.equal(operations.split(CONFIG_START).length, 2, 'one start marker')
  t.equal(operations.split(CONFIG_END).length, 2, 'one end marker')
  t.equal(operations, withConfigReference(operations))
  for (const [name] of grouped) t.match(renderConfigReference(), `| \`${name}\` |`, `${name} has a row`)
})

t.test('every environment variable has a description and belongs to exactly one group', async (t) => {
  const names = grouped.map(([name]) => name)
  t.same([...names].sort(), Object.keys(EnvSchema.properties).sort(), 'the groups hold the schema, each variable once')
  for (const [name, schema] of grouped) t.ok((schema.description ?? '').trim().length > 0, `${name} has a description`)
})

t.test('every variable src/config.ts reads is in the schema, and every variable in the schema is read', async (t) => {
  const source = await readFile(new URL('src/config.ts', ROOT), 'utf8')
  const read = new Set([...source.matchAll(/\benv\.([A-Z][A-Z0-9_]*)/g), ...source.matchAll(/'([A-Z][A-Z0-9]*_[A-Z0-9_]+)'/g)].map(([, name]) => name))
  const schema = new Set(Object.keys(EnvSchema.properties))
  for (const name of read) t.ok(schema.has(name ?? ''), `${name} is in the schema`)
  for (const name of schema) t.ok(read.has(name), `${name} is read`)
})

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens; a repeated heading gets -1, -2… */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>()
  const text = markdown.replace(/^```[\s\S]*?^```/gm, '')
  for (const [, heading] of text.matchAll(/^#{1,6} (.+)$/gm)) {
    const slug = (heading ?? '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replaceAll(' ', '-')
    let anchor = slug
    for (let n = 1; anchors.has(anchor); n++) anchor = `${slug}-${n}`
    anchors.add(anchor)
  }
  return anchors
}

t.test('every relative link in README.md and docs/ points at a file that exists, and at a heading it has', async (t) => {
  for (const file of markdownFiles) {
    const markdown = await readFile(file, 'utf8')
    const links = [...markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/\]\(([^)\s]+)\)/g)].map(([, target]) => target ?? '')
    const relative = links.filter((target) => !/^[a-z]+:/.test(target))
    t.ok(relative.length > 0, `${file.pathname} links to something`)
    for (const target of relative) {
      const [path = '', anchor] = target.split('#')
      const targetUrl = path === '' ? file : new URL(path, file)
      const label = `${file.pathname.slice(ROOT.pathname.length)} -> ${target}`
      const content = await readFile(targetUrl, 'utf8').catch(() => undefined)
      if (content === undefined) {
        // A folder is a valid target too.
        const listed = await readdir(targetUrl).catch(() => undefined)
        t.ok(listed, `${label}: exists`)
        continue
      }
      if (anchor !== undefined) t.ok(anchorsOf(content).has(anchor), `${label}: the heading exists`)
      else t.pass(label)
    }
  }
})

t.test("docs/architecture.md's failure table is src/errors.ts's table, row by row", async (t) => {
  const architecture = await readFile(new URL('architecture.md', DOCS), 'utf8')
  const yes = (value: boolean) => (value ? 'yes' : 'no')
  const rows = architecture.split('\n').filter((line) => line.startsWith('| `GW_'))
  const expected = Object.keys(problemKinds)
    .filter(isFailureKind)
    .map((code) => {
      const traits = traitsOf(failure(code, ''))
      const cells = [`\`${code}\``, traits.status, traits.concerns, yes(traits.servesStale), yes(traits.tripsBreaker), yes(traits.retried), traits.job, traits.unready ? '503' : '']
      return `| ${cells.join(' | ')} |`
    })
  t.same(rows, expected)
})
