import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { configSchema } from './schema.js';
import { ConfigError, type ConfigProblem } from './errors.js';
import { locate } from './locate.js';
import { closest } from './suggest.js';
import { curationProblems } from '../curation/problems.js';
import type { BastionConfig, LoadedConfig } from './types.js';

const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: false });
const validate = ajv.compile<BastionConfig>(configSchema);

/** Header names whose values are credentials: they must come from the environment or a file. */
const SENSITIVE_HEADER = /^(authorization|proxy-authorization|cookie|x-api-key|api-key)$|token|secret|key$/i;

/** Reads, parses and validates a config file (YAML or JSON). Throws ConfigError with locations. */
export function loadConfigFile(path: string): LoadedConfig {
  const absolute = resolve(path);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError([{ file: path, line: undefined, column: undefined, field: '', message: `cannot read the file (${reason})`, fix: `check that ${absolute} exists and is readable` }]);
  }
  return loadConfigText(text, path, dirname(absolute));
}

/** Parses and validates config text. `source` names it in messages. */
export function loadConfigText(text: string, source: string, baseDir: string): LoadedConfig {
  const lineCounter = new LineCounter();
  // JSON is a subset of YAML 1.2, so one parser gives line numbers for both formats.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      sortProblems(
        doc.errors.map((error) => {
          const position = lineCounter.linePos(syntaxErrorOffset(text, error.pos[0], error.message));
          return { file: source, line: position.line, column: position.col, field: '', message: `syntax error: ${error.message.split('\n')[0]}`, fix: 'fix the YAML/JSON syntax at this position' };
        }),
      ),
    );
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  if (!validate(raw)) {
    throw new ConfigError(sortProblems(describeSchemaErrors(validate.errors ?? [], doc, lineCounter, source)));
  }
  const config = raw;
  const problems = semanticProblems(config, doc, lineCounter, source);
  if (problems.length > 0) throw new ConfigError(sortProblems(problems));
  return { config, source, baseDir };
}

/** Problems in the order of the file, so the first one printed is the first one to fix. */
function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

/**
 * Where a syntax error really is. The parser notices an unclosed `[` or `{` only on a later
 * line; the mistake is the bracket that was never closed, so point at it.
 */
export function syntaxErrorOffset(text: string, offset: number, message: string): number {
  if (!/flow (sequence|mapping|collection)|end with a [\]}]/i.test(message)) return offset;
  const closers: string[] = [];
  let quote: string | undefined;
  for (let index = Math.min(offset, text.length) - 1; index >= 0; index -= 1) {
    const char = text[index] ?? '';
    if (quote !== undefined) {
      if (char === quote) quote = undefined;
      continue;
    }
    if (char === '"' || char === "'") quote = char;
    else if (char === ']' || char === '}') closers.push(char);
    else if (char === '[' || char === '{') {
      const expected = char === '[' ? ']' : '}';
      if (closers[closers.length - 1] === expected) closers.pop();
      else return index;
    }
  }
  return offset;
}

function describeSchemaErrors(errors: readonly ErrorObject[], doc: Document, lineCounter: LineCounter, file: string): ConfigProblem[] {
  const problems = new Map<string, ConfigProblem>();
  // The if/then wrapper and oneOf branches repeat the real error: keep the most specific ones.
  const meaningful = errors.filter((error) => error.keyword !== 'if' && !('propertyName' in error) && !(error.keyword === 'oneOf' && errors.some((other) => other !== error && other.instancePath.startsWith(error.instancePath) && other.keyword !== 'oneOf')));
  for (const error of meaningful) {
    const problem = describeSchemaError(error, doc, lineCounter, file);
    const key = `${problem.field}|${problem.message}`;
    if (!problems.has(key)) problems.set(key, problem);
  }
  return [...problems.values()];
}

function describeSchemaError(error: ErrorObject, doc: Document, lineCounter: LineCounter, file: string): ConfigProblem {
  const path = error.instancePath.split('/').slice(1).map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));
  const parent = (error.parentSchema ?? {}) as { description?: string; properties?: Record<string, { description?: string }> };
  const at = (segments: string[], preferKey = false): Pick<ConfigProblem, 'line' | 'column'> => {
    const position = locate(doc, lineCounter, segments, preferKey);
    return { line: position?.line, column: position?.column };
  };
  switch (error.keyword) {
    case 'additionalProperties': {
      const extra = String((error.params as { additionalProperty: string }).additionalProperty);
      const allowed = Object.keys(parent.properties ?? {});
      const suggestion = closest(extra, allowed);
      return {
        file,
        ...at([...path, extra], true),
        field: [...path, extra].join('.'),
        message: `unknown field '${extra}'`,
        fix: suggestion !== undefined ? `did you mean '${suggestion}'?` : `remove it; allowed fields here: ${allowed.join(', ')}`,
      };
    }
    case 'required': {
      const missing = String((error.params as { missingProperty: string }).missingProperty);
      const hint = parent.properties?.[missing]?.description;
      // A description may already be the line to add (`version: 1`).
      const fix = hint === undefined ? `add the field '${missing}'` : hint.startsWith(`${missing}:`) ? `add ${hint}` : `add ${missing}: ${hint}`;
      return { file, ...at(path), field: [...path, missing].join('.'), message: `missing required field '${missing}'`, fix };
    }
    case 'propertyNames': {
      const name = String((error.params as { propertyName: string }).propertyName);
      return { file, ...at([...path, name], true), field: [...path, name].join('.'), message: `invalid name '${name}'`, fix: parent.description !== undefined ? `use ${parent.description}` : 'rename it' };
    }
    case 'enum':
    case 'const': {
      const allowed = error.keyword === 'enum' ? (error.params as { allowedValues: unknown[] }).allowedValues : [(error.params as { allowedValue: unknown }).allowedValue];
      const suggestion = typeof error.data === 'string' ? closest(error.data, allowed.filter((value): value is string => typeof value === 'string')) : undefined;
      const fix = suggestion === undefined ? parent.description : `did you mean '${suggestion}'?${parent.description === undefined ? '' : ` (${parent.description})`}`;
      return { file, ...at(path), field: path.join('.'), message: `must be one of ${allowed.map((value) => JSON.stringify(value)).join(', ')}`, fix };
    }
    default:
      return { file, ...at(path), field: path.join('.'), message: error.message ?? error.keyword, fix: parent.description };
  }
}

/** The legacy SSE paths must differ from each other and from the Streamable HTTP path, or one would shadow another. */
function legacySseProblems(config: BastionConfig, doc: Document, lineCounter: LineCounter, file: string): ConfigProblem[] {
  const http = config.listeners.http;
  const legacy = http?.legacySse;
  if (http === undefined || legacy?.enabled !== true) return [];
  const taken = new Map<string, string>([[http.path, 'path']]);
  const problems: ConfigProblem[] = [];
  for (const key of ['ssePath', 'messagesPath'] as const) {
    const value = legacy[key] ?? (key === 'ssePath' ? '/sse' : '/messages');
    const clash = taken.get(value);
    if (clash !== undefined) {
      const position = locate(doc, lineCounter, ['listeners', 'http', 'legacySse', key]);
      problems.push({ file, line: position?.line, column: position?.column, field: `listeners.http.legacySse.${key}`, message: `'${value}' is already listeners.http.${clash === 'path' ? 'path' : `legacySse.${clash}`}`, fix: `choose another path for ${key}` });
    }
    taken.set(value, key);
  }
  return problems;
}

function semanticProblems(config: BastionConfig, doc: Document, lineCounter: LineCounter, file: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const [name, server] of Object.entries(config.servers)) {
    if (server.transport !== 'http') continue;
    for (const [header, value] of Object.entries(server.headers)) {
      if (typeof value === 'string' && SENSITIVE_HEADER.test(header)) {
        const position = locate(doc, lineCounter, ['servers', name, 'headers', header]);
        problems.push({
          file,
          line: position?.line,
          column: position?.column,
          field: `servers.${name}.headers.${header}`,
          message: 'a credential is written inline in the config',
          fix: `${header}: { fromEnv: VARIABLE } or ${header}: { fromFile: /run/secrets/${name}-token }`,
        });
      }
    }
  }
  const unprefixed = Object.entries(config.servers).filter(([, server]) => !server.namespaced);
  for (const [name] of unprefixed.slice(1)) {
    const position = locate(doc, lineCounter, ['servers', name, 'namespaced']);
    problems.push({
      file,
      line: position?.line,
      column: position?.column,
      field: `servers.${name}.namespaced`,
      message: `only one server may keep its own names, and '${unprefixed[0]?.[0] ?? ''}' already does (two could offer the same tool name)`,
      fix: 'remove namespaced: false from all servers but one',
    });
  }
  problems.push(...legacySseProblems(config, doc, lineCounter, file));
  const oauth = config.auth.oauth;
  if (oauth !== undefined && oauth.jwksUrl === undefined && oauth.jwksFile === undefined) {
    const position = locate(doc, lineCounter, ['auth', 'oauth']);
    problems.push({ file, line: position?.line, column: position?.column, field: 'auth.oauth', message: 'no key source for validating access tokens', fix: 'add jwksUrl: https://issuer.example.com/.well-known/jwks.json (or jwksFile: PATH)' });
  }
  if (oauth !== undefined && config.listeners.http === undefined) {
    const position = locate(doc, lineCounter, ['auth', 'oauth']);
    problems.push({ file, line: position?.line, column: position?.column, field: 'auth.oauth', message: 'OAuth needs the HTTP listener', fix: 'add listeners: { http: { port: 8080 } }' });
  }
  for (const [name, server] of Object.entries(config.servers)) {
    if (server.transport !== 'http' || server.auth === undefined || config.credentials !== undefined) continue;
    const position = locate(doc, lineCounter, ['servers', name, 'auth']);
    problems.push({ file, line: position?.line, column: position?.column, field: `servers.${name}.auth`, message: 'per-agent upstream credentials need the credential vault', fix: 'add credentials: { key: { fromEnv: BASTION_VAULT_KEY } } (a key from: openssl rand -base64 32)' });
  }
  problems.push(...quotaProblems(config, doc, lineCounter, file));
  problems.push(...curationProblems(config.servers, file, (path) => locate(doc, lineCounter, path)));
  return problems;
}

function quotaProblems(config: BastionConfig, doc: Document, lineCounter: LineCounter, file: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const at = (segments: Array<string | number>, field: string, message: string, fix: string): void => {
    const position = locate(doc, lineCounter, segments.map(String));
    problems.push({ file, line: position?.line, column: position?.column, field, message, fix });
  };
  const { quotas } = config;
  if (quotas.store.kind === 'redis' && quotas.store.url === undefined) {
    at(['quotas', 'store'], 'quotas.store.url', 'a redis store needs a URL', 'add url: { fromEnv: BASTION_REDIS_URL } (or url: redis://127.0.0.1:6379)');
  }
  if (typeof quotas.store.url === 'string' && /^rediss?:\/\/[^/@]*:[^/@]+@/.test(quotas.store.url)) {
    at(['quotas', 'store', 'url'], 'quotas.store.url', 'a Redis password is written inline in the config', 'url: { fromEnv: BASTION_REDIS_URL } or url: { fromFile: /run/secrets/redis-url }');
  }
  quotas.rates.forEach((rule, index) => {
    if (rule.burst !== undefined && rule.algorithm === 'slidingWindow') {
      at(['quotas', 'rates', index, 'burst'], `quotas.rates.${index}.burst`, 'burst applies to the tokenBucket algorithm only', 'remove burst, or set algorithm: tokenBucket (for a sliding window, add a second, shorter rule instead)');
    }
  });
  quotas.breakers.forEach((rule, index) => {
    const triggers = [rule.consecutiveFailures, rule.consecutiveTimeouts, rule.errorRate, rule.slowCallMs, rule.maxMemoryBytes, rule.maxCallCpuMs];
    if (triggers.every((trigger) => trigger === undefined)) {
      at(['quotas', 'breakers', index], `quotas.breakers.${index}`, 'the breaker has nothing that opens it', 'add consecutiveFailures: 5 (or consecutiveTimeouts, errorRate, slowCallMs, maxMemoryBytes, maxCallCpuMs)');
    }
    if (rule.slowCallMs !== undefined && rule.consecutiveFailures === undefined && rule.errorRate === undefined) {
      at(['quotas', 'breakers', index, 'slowCallMs'], `quotas.breakers.${index}.slowCallMs`, 'slow calls count as failures, but no failure threshold is set', 'add consecutiveFailures: 5 or errorRate: { threshold: 0.5 }');
    }
  });
  return problems;
}
