import { Type } from 'typebox'
import { named } from './named.js'

export const HealthStatus = named('HealthStatus', Type.Object({ status: Type.String() }))
