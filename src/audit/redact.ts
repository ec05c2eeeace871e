import patterns from './redaction-patterns.json' with { type: 'json' };
import { isWellFormed } from './canonical.js';
import type { JsonValue } from './schema.js';

/**
 * Secret redaction applied before anything reaches a record. The patterns are data
 * (redaction-patterns.json) so reviewers can diff them; this file only applies them.
 */

interface CompiledPattern {
  name: string;
  regex: RegExp;
  keep: number;
}

const compiled: CompiledPattern[] = patterns.patterns.map((item) => ({ name: item.name, regex: new RegExp(item.regex, item.flags), keep: item.keep }));
const sensitiveKey = new RegExp(patterns.sensitiveKeys, 'i');

export interface Redactor {
  count: number;
  text(value: string): string;
  json(value: unknown): JsonValue;
}

/** A redactor that counts what it replaced, for the record's `redactions` field. */
export function createRedactor(): Redactor {
  const redactor: Redactor = {
    count: 0,
    text(value) {
      let result = wellFormed(value);
      for (const pattern of compiled) {
        pattern.regex.lastIndex = 0;
        if (!pattern.regex.test(result)) continue;
        pattern.regex.lastIndex = 0;
        result = result.replace(pattern.regex, (...args: unknown[]) => {
          redactor.count += 1;
          const groups = args.slice(1, 1 + pattern.keep).map((group) => (typeof group === 'string' ? group : ''));
          return pattern.keep >= 2 ? `${groups[0]}[REDACTED:${pattern.name}]${groups.slice(1).join('')}` : `${groups.join('')}[REDACTED:${pattern.name}]`;
        });
      }
      return result;
    },
    json(value) {
      return redactValue(value, redactor, 0);
    },
  };
  return redactor;
}

const MAX_DEPTH = 64;

function redactValue(value: unknown, redactor: Redactor, depth: number): JsonValue {
  if (depth > MAX_DEPTH) return '[TRUNCATED:depth]';
  if (typeof value === 'string') return redactor.text(value);
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map((item) => redactValue(item, redactor, depth + 1));
  if (typeof value === 'object') {
    const out: { [key: string]: JsonValue } = {};
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
      // Members JSON would leave out are left out here too.
      if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
      const safeKey = redactor.text(key);
      if (sensitiveKey.test(key) && item !== null && (typeof item === 'string' || typeof item === 'number')) {
        redactor.count += 1;
        out[safeKey] = '[REDACTED:key]';
      } else {
        out[safeKey] = redactValue(item, redactor, depth + 1);
      }
    }
    return out;
  }
  return null;
}

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Replaces lone surrogates (which have no canonical JSON form) with U+FFFD. */
export function wellFormed(text: string): string {
  return isWellFormed(text) === true ? text : text.replace(loneSurrogate, '\uFFFD');
}
