import AjvCompiler from '@fastify/ajv-compiler'
import type { FastifySchemaCompiler } from 'fastify'

const pool = AjvCompiler()

type RouteSchema = Parameters<FastifySchemaCompiler<unknown>>[0]

/**
 * Fastify's validator factory (`schemaController.compilersFactory.buildValidator`), but a JSON body is
 * validated as it was typed. Fastify's one Ajv coerces every request part, which a query string or a path
 * needs (they are text) but which turns a body's `"5"` into 5 and `123` into "123". So the body gets an Ajv
 * of its own without coercion; both come from @fastify/ajv-compiler's pool, with the shared schemas and
 * the `ajv` server options.
 */
export const buildValidator: AjvCompiler.BuildCompilerFromPool = (externalSchemas, options) => {
  const text = pool(externalSchemas, options)
  const json = pool(externalSchemas, {
    plugins: options?.plugins,
    onCreate: options?.onCreate,
    customOptions: { ...options?.customOptions, coerceTypes: false }
  })
  // Fastify calls the compiler with the route's schema and its part, though the pool's types say a bare schema.
  return (route) => ((route as RouteSchema).httpPart === 'body' ? json : text)(route)
}
