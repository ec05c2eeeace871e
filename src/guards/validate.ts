import { createHash } from 'node:crypto';
import { Ajv2020, type ValidateFunction, type ErrorObject } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { ErrorCode, failure, type Guard } from '../pipeline/index.js';

// ajv-formats ships CommonJS; under NodeNext its default export is the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

const MAX_CACHED_VALIDATORS = 2048;

/**
 * Validates tool arguments against the tool's own inputSchema before the call leaves the
 * gateway, so an upstream only ever sees input of the shape it declared. A schema that cannot
 * be compiled fails closed: the tool cannot be called until its author fixes it. The definition
 * checked is the one the catalog published, which the hash lock holds identical to the pinned
 * one, so arguments are checked against the approved schema, not whatever the server lists now.
 */
export function createValidationGuard(): Guard {
  const ajv = new Ajv2020({ allErrors: false, strict: false, validateSchema: false, allowUnionTypes: true });
  addFormats(ajv);
  const cache = new Map<string, ValidateFunction | Error>();

  function validatorFor(schema: unknown): ValidateFunction | Error {
    const key = createHash('sha256').update(JSON.stringify(schema)).digest('base64');
    let entry = cache.get(key);
    if (entry === undefined) {
      try {
        entry = ajv.compile(closedToUndeclared(schemaForDraft(schema)) as Record<string, unknown>);
      } catch (error) {
        entry = error instanceof Error ? error : new Error(String(error));
      }
      if (cache.size >= MAX_CACHED_VALIDATORS) cache.delete(cache.keys().next().value as string);
      cache.set(key, entry);
    }
    return entry;
  }

  // The same tool object is checked on every call: remember its validator by identity.
  const byDefinition = new WeakMap<object, ValidateFunction | Error>();

  return {
    name: 'validate',
    handle(ctx, next) {
      if (ctx.method !== 'tools/call' || ctx.tool === undefined) return next(ctx);
      let validator = byDefinition.get(ctx.tool);
      if (validator === undefined) {
        validator = validatorFor(ctx.tool['inputSchema'] ?? { type: 'object' });
        byDefinition.set(ctx.tool, validator);
      }
      if (validator instanceof Error) {
        ctx.audit.decision = 'deny';
        ctx.audit.reason = 'invalid_tool_schema';
        ctx.audit.deniedBy = 'validate';
        return failure(ErrorCode.InvalidParams, `the tool's inputSchema cannot be compiled, so its input cannot be checked: ${validator.message}`, { reason: 'invalid_tool_schema' });
      }
      const args = ctx.params?.['arguments'] ?? {};
      if (!validator(args)) {
        ctx.audit.decision = 'deny';
        ctx.audit.reason = 'invalid_arguments';
        ctx.audit.deniedBy = 'validate';
        return failure(ErrorCode.InvalidParams, `invalid arguments for ${String(ctx.params?.['name'])}: ${describe(validator.errors ?? [])}`, {
          reason: 'invalid_arguments',
          errors: (validator.errors ?? []).map((error) => ({ path: error.instancePath || '/', message: error.message })),
        });
      }
      return next(ctx);
    },
  };
}

function describe(errors: readonly ErrorObject[]): string {
  const first = errors[0];
  if (first === undefined) return 'they do not match the schema';
  return `${first.instancePath === '' ? 'arguments' : first.instancePath} ${first.message ?? 'is invalid'}`;
}

/**
 * A schema that declares its arguments (`properties`) takes no others unless it says so
 * (`additionalProperties`, `patternProperties` or `unevaluatedProperties` present): JSON Schema
 * lets undeclared ones through by default, and a server that later reads one would receive what
 * no reviewer approved. A schema that declares no properties at all (`{ type: object }`) was
 * approved as free-form and stays so.
 */
function closedToUndeclared(schema: unknown): unknown {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return schema;
  const node = schema as Record<string, unknown>;
  const open = ['additionalProperties', 'patternProperties', 'unevaluatedProperties'].some((key) => node[key] !== undefined);
  if (open || typeof node['properties'] !== 'object' || node['properties'] === null) return schema;
  return { ...node, additionalProperties: false };
}

/** Tools written for draft-07 say so in $schema; 2020-12 reads them the same apart from the $schema keyword. */
function schemaForDraft(schema: unknown): unknown {
  if (schema === null || typeof schema !== 'object') return schema;
  const { $schema: _ignored, ...rest } = schema as Record<string, unknown>;
  return rest;
}
