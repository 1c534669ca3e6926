import { Type, type Static } from 'typebox'
import { named, ref } from './named.js'

export const Usage = named(
  'Usage',
  Type.Object({
    limit: Type.Integer({ description: 'Upstream calls allowed today' }),
    used: Type.Integer(),
    remaining: Type.Integer()
  })
)
export type Usage = Static<typeof Usage>

export const QuotaReport = named(
  'QuotaReport',
  Type.Object(
    {
      day: Type.String({ description: 'The UTC day counted' }),
      resets_at: Type.String({ format: 'date-time', description: 'The next 00:00 UTC' }),
      team: ref(Usage),
      exports: ref(Usage),
      consumers: Type.Record(Type.String(), ref(Usage), { description: 'By consumer name' })
    },
    {
      examples: [
        {
          day: '2026-11-25',
          resets_at: '2026-11-26T00:00:00.000Z',
          team: { limit: 20000, used: 1200, remaining: 18800 },
          exports: { limit: 10000, used: 900, remaining: 9100 },
          consumers: { notebooks: { limit: 5000, used: 300, remaining: 4700 } }
        }
      ]
    }
  )
)
export type QuotaReport = Static<typeof QuotaReport>
