import { Type } from 'typebox'
import { named } from './named.js'

export const HealthStatus = named(
  'HealthStatus',
  Type.Object({
    status: Type.String(),
    redis: Type.Optional(Type.String({ description: 'With REDIS_URL: `unavailable` while Redis does not answer (and `status` is `degraded`)' }))
  })
)
