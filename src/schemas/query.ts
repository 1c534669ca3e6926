import type { AnySchemaObject, FuncKeywordDefinition, SchemaValidateFunction } from 'ajv'
import { Type, type TProperties } from 'typebox'

/**
 * The Ajv keyword that makes a query string's integers strict. Ajv coerces a query value with
 * JavaScript's `+value` before `type` and `minimum`/`maximum` run, so `Infinity`, `1e99`, `0x10`,
 * `20.0`, ` 5` and 17-digit values that round all pass as integers. This keyword sits on the query
 * object and runs before `properties` (that is, before any coercion): every value the schema types
 * as an integer must be spelled as plain decimal digits that a double holds exactly. The properties
 * stay `Type.Integer`, so the one schema still gives the TypeScript type, the range check and the
 * OpenAPI entry, and Ajv's own coercion then converts the checked text once.
 */
export const STRICT_INTEGERS = 'x-strict-integers'

/** No sign, no leading zero, no exponent, point or space. */
const DECIMAL = /^(?:0|[1-9][0-9]*)$/

const validateStrictIntegers: SchemaValidateFunction = (enabled: boolean, data: Record<string, unknown>, parentSchema?: AnySchemaObject) => {
  // Ajv types a schema's keywords as `any`; this keyword sits on a TypeBox object, whose properties are schemas.
  const properties = enabled ? ((parentSchema?.properties ?? {}) as Record<string, { type?: unknown }>) : {}
  const errors = Object.entries(properties)
    .filter(([name, property]) => property.type === 'integer' && name in data && !isDecimal(data[name]))
    .map(([name]) => ({
      keyword: STRICT_INTEGERS,
      instancePath: `/${name}`,
      params: {},
      message: 'must be a whole number in plain decimal digits (no sign, exponent, point, spaces or leading zeros)'
    }))
  validateStrictIntegers.errors = errors
  return errors.length === 0
}

export const strictIntegersKeyword: FuncKeywordDefinition = {
  keyword: STRICT_INTEGERS,
  type: 'object',
  schemaType: 'boolean',
  before: 'properties',
  errors: true,
  validate: validateStrictIntegers
}

function isDecimal(value: unknown): boolean {
  // A number is a default Ajv filled in, not text a client wrote; a repeated parameter (an array) is refused.
  if (typeof value === 'number') return true
  return typeof value === 'string' && DECIMAL.test(value) && Number.isSafeInteger(Number(value))
}

/** A query string object: strict integers, and no parameters beyond those named. */
export function QueryString<T extends TProperties>(properties: T) {
  return Type.Object(properties, { additionalProperties: false, [STRICT_INTEGERS]: true })
}

/** The query string of every route that takes no parameters: any is refused (a stray `fields=…` or a typo), never silently ignored. */
export const NoQuery = QueryString({})

/** Unix seconds up to the year 2100: the bound of any cursor TikTok can mean. */
export const MAX_CURSOR = 4102444800

export const DEFAULT_MAX_COUNT = 20

/** `max_count`: how many `items` a page holds. */
export const MaxCount = (items: string) =>
  Type.Integer({ minimum: 1, maximum: 100, default: DEFAULT_MAX_COUNT, description: `${items} per page.` })

/** `cursor`: unix seconds, paging back in time; `what` says what the time is of. */
export const Cursor = (what: string) =>
  Type.Integer({
    minimum: 0,
    maximum: MAX_CURSOR,
    description:
      `Unix seconds: ${what} on or before this time. Omit for the newest; ` +
      'pass the `cursor` of the previous page to get the next one.'
    // No example: Swagger UI would pre-fill it, and "Try it out" would fetch an old, empty page.
  })

/**
 * A number of accounts to stop after: bounded, so that a client generated from the document can
 * hold it (1e30 is an integer to JSON Schema) and no list is longer (the largest have under a billion followers).
 */
export const AccountLimit = (description: string) => Type.Integer({ minimum: 1, maximum: 1_000_000_000, description })
