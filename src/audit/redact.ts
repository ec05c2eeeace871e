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

// Every pattern is global: all its matches are replaced, and the decoded pass walks them with matchAll.
const compiled: CompiledPattern[] = patterns.patterns.map((item) => ({ name: item.name, regex: new RegExp(item.regex, item.flags.includes('g') ? item.flags : `${item.flags}g`), keep: item.keep }));
const sensitiveKey = new RegExp(patterns.sensitiveKeys, 'i');

export interface Redactor {
  count: number;
  /** Values json() replaced by `[TRUNCATED:depth]` (not redactions: nothing was matched in them). */
  truncations: number;
  text(value: string): string;
  json(value: unknown): JsonValue;
}

/**
 * Short texts that came out of the patterns unchanged, remembered across redactors: a record
 * redacts the same tool name, summary and reason on every call, and 14 patterns cost more than a
 * set lookup. The patterns are fixed when this module loads, so a text that matched none of them
 * never will; a text that matched is not remembered (its count must grow on every use).
 */
const CLEAN_TEXT_MAX_CHARS = 256;
const CLEAN_TEXT_MAX_ENTRIES = 4096;
const cleanTexts = new Set<string>();

function rememberClean(text: string): void {
  if (text.length > CLEAN_TEXT_MAX_CHARS) return;
  // Bounded: a client choosing a new name per call must not grow this without limit.
  if (cleanTexts.size >= CLEAN_TEXT_MAX_ENTRIES) cleanTexts.clear();
  cleanTexts.add(text);
}

/** A redactor that counts what it replaced, for the record's `redactions` field. */
export function createRedactor(): Redactor {
  const redactor: Redactor = {
    count: 0,
    truncations: 0,
    text(value) {
      if (cleanTexts.has(value)) return value;
      const before = redactor.count;
      const redacted = redactPatterns(value, redactor);
      if (redacted === value && redactor.count === before) rememberClean(value);
      return redacted;
    },
    json(value) {
      return redactValue(value, redactor, 0);
    },
  };
  return redactor;
}

/** Every pattern over the text, then over its percent-decoded form; counts each replacement. */
function redactPatterns(value: string, redactor: Redactor): string {
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
  return PERCENT_ESCAPE.test(result) ? redactPercentDecoded(result, redactor) : result;
}

const PERCENT_ESCAPE = /%[0-7][0-9A-Fa-f]/;

/**
 * A secret can arrive percent-encoded (`Authorization=bearer%20eyJ...` in a query string) where
 * the patterns, written for plain text, do not see it. Matches found in the decoded text are
 * replaced at the same place in the original: the rest of the text stays as it was sent.
 */
function redactPercentDecoded(text: string, redactor: Redactor): string {
  const { decoded, starts } = percentDecode(text);
  const spans: Array<{ from: number; to: number; name: string }> = [];
  for (const pattern of compiled) {
    pattern.regex.lastIndex = 0;
    for (const match of decoded.matchAll(pattern.regex)) {
      const groups = match.slice(1, 1 + pattern.keep).map((group) => group ?? '');
      const lead = pattern.keep >= 1 ? (groups[0] as string).length : 0;
      const trail = pattern.keep >= 2 ? groups.slice(1).join('').length : 0;
      const from = match.index + lead;
      const to = match.index + match[0].length - trail;
      if (to > from) spans.push({ from: starts[from] as number, to: starts[to] as number, name: pattern.name });
    }
  }
  if (spans.length === 0) return text;
  spans.sort((a, b) => a.from - b.from);
  let out = '';
  let at = 0;
  for (const span of spans) {
    // Overlapping matches of two patterns become one replacement.
    if (span.from < at) {
      at = Math.max(at, span.to);
      continue;
    }
    out += `${text.slice(at, span.from)}[REDACTED:${span.name}]`;
    redactor.count += 1;
    at = span.to;
  }
  return out + text.slice(at);
}

/** Decodes ASCII percent-escapes; starts[i] is where decoded character i begins in the text (starts[length] = text length). */
function percentDecode(text: string): { decoded: string; starts: number[] } {
  let decoded = '';
  const starts: number[] = [];
  for (let index = 0; index < text.length; ) {
    starts.push(index);
    if (text.charCodeAt(index) === 0x25 && PERCENT_ESCAPE.test(text.slice(index, index + 3))) {
      decoded += String.fromCharCode(Number.parseInt(text.slice(index + 1, index + 3), 16));
      index += 3;
    } else {
      decoded += text[index] as string;
      index += 1;
    }
  }
  starts.push(text.length);
  return { decoded, starts };
}

const MAX_DEPTH = 64;

function redactValue(value: unknown, redactor: Redactor, depth: number): JsonValue {
  if (depth > MAX_DEPTH) {
    redactor.truncations += 1;
    return '[TRUNCATED:depth]';
  }
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
