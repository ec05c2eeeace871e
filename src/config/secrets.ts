import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ValueOrSecret } from './types.js';

/** Thrown when a referenced secret is missing: the server that needs it must not start without it. */
export class SecretError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretError';
  }
}

/** Resolves an inline value or a secret reference. Missing secrets fail closed. */
export function resolveValue(value: ValueOrSecret, field: string, baseDir: string, env: NodeJS.ProcessEnv = process.env): string {
  if (typeof value === 'string') return value;
  if ('fromEnv' in value) {
    const found = env[value.fromEnv];
    if (found === undefined || found === '') throw new SecretError(`${field}: environment variable ${value.fromEnv} is not set (export it before starting Bastion)`);
    return found;
  }
  const path = resolve(baseDir, value.fromFile);
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new SecretError(`${field}: cannot read secret file ${path} (${error instanceof Error ? error.message : String(error)})`);
  }
}

/** Resolves every entry of a map of values/secret references. */
export function resolveMap(values: Record<string, ValueOrSecret>, field: string, baseDir: string, env?: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(values)) out[key] = resolveValue(value, `${field}.${key}`, baseDir, env);
  return out;
}
