import { Type, type Static, type TSchema, type TUnsafe } from 'typebox'

/**
 * Named schemas: Fastify knows each by its `$id` (registered once with `app.addSchema`, see
 * `components.ts`), routes and other schemas point at it with `ref()`, and the OpenAPI document holds
 * it once under `components.schemas`, so that generated clients get a named type.
 */
export function named<T extends TSchema>(name: string, schema: T): T & { $id: string } {
  return Object.assign(schema, { $id: name })
}

/** `{ $ref: name }` on the wire, the named schema's own type for TypeScript. */
export function ref<T extends TSchema>(schema: T & { $id: string }): TUnsafe<Static<T>> {
  return Type.Unsafe<Static<T>>(Type.Ref(schema.$id))
}
