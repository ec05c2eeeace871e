// The published JSON Schemas (schemas/*.json at the package root) compiled once with ajv.
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { IntegrityFileError, pointerToPath, type SourceFile } from './source.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ allErrors: true, strict: false }));

// dist/src/integrity/ and src/integrity/ are both three levels below the package root.
const schemaUrl = (name: string): URL => new URL(`../../../schemas/${name}`, import.meta.url);

const cache = new Map<string, ValidateFunction>();

export function loadSchema(name: 'manifest.schema.json' | 'trusted-signers.schema.json'): Record<string, unknown> {
  let url = schemaUrl(name);
  try {
    return JSON.parse(readFileSync(url, 'utf8')) as Record<string, unknown>;
  } catch {
    // When run from src/ through a loader, the schema sits two levels up instead.
    url = new URL(`../../schemas/${name}`, import.meta.url);
    return JSON.parse(readFileSync(url, 'utf8')) as Record<string, unknown>;
  }
}

function validator(name: 'manifest.schema.json' | 'trusted-signers.schema.json'): ValidateFunction {
  let validate = cache.get(name);
  if (validate === undefined) {
    validate = ajv.compile(loadSchema(name));
    cache.set(name, validate);
  }
  return validate;
}

function describe(error: ErrorObject): string {
  if (error.keyword === 'additionalProperties') return `unknown field '${String(error.params['additionalProperty'])}' (check the spelling against the schema)`;
  if (error.keyword === 'required') return `missing required field '${String(error.params['missingProperty'])}'`;
  if (error.keyword === 'enum') return `${error.message ?? 'invalid'}: ${JSON.stringify(error.params['allowedValues'])}`;
  return error.message ?? 'invalid value';
}

/** Validates a parsed file against a published schema; throws with file, line and field per problem. */
export function validateAgainst(name: 'manifest.schema.json' | 'trusted-signers.schema.json', source: SourceFile): void {
  const validate = validator(name);
  if (validate(source.value)) return;
  const seen = new Set<string>();
  const problems = (validate.errors ?? [])
    .filter((error) => error.keyword !== 'oneOf' && error.keyword !== 'if')
    .map((error) => {
      const path = pointerToPath(error.instancePath);
      return { file: source.file, line: source.lineOf(path), field: path.join('.') || '(top level)', message: describe(error) };
    })
    .filter((problem) => {
      const key = `${problem.field}\u0000${problem.message}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  throw new IntegrityFileError(problems.length > 0 ? problems : [{ file: source.file, line: undefined, field: '', message: 'does not match the schema' }]);
}
