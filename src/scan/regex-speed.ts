/**
 * Equivalent, faster spellings of rule regexes. A pattern that opens with a word-boundary assertion
 * (`\b`, or concepts.ts's Unicode boundary) makes V8 try the assertion at every position of the text:
 * no first-character quick check is possible, and the scan costs ~8x more than the same pattern
 * opened by a lookbehind (measured on clause-length text). Where every branch of the pattern must
 * begin with a word character, a boundary before it can only hold with a non-word character (or
 * nothing) before: `\bX` is exactly `(?<!\w)X`. Only that case is rewritten; anything the checker
 * does not understand is left as written.
 */

/** The character classes the boundary is defined over. */
export interface BoundaryKind {
  /** What replaces a leading `\b` in the source. */
  lookbehind: string;
  /** Whether a literal character (as written in the source, flags iu) is certainly in the word class. */
  isWord: (ch: string) => boolean;
}

/** JavaScript's own \b under flags iu: \w extended by case folding, so every ASCII letter's variants (ſ, K) are word characters. */
export const ASCII_BOUNDARY: BoundaryKind = { lookbehind: '(?<!\\w)', isWord: (ch) => /^[A-Za-z0-9_]$/.test(ch) };

/** concepts.ts's Unicode boundary over [\p{L}\p{N}_] (case-closed under iu too). */
export const UNICODE_WORD_BOUNDARY: BoundaryKind = { lookbehind: '(?<![\\p{L}\\p{N}_])', isWord: (ch) => /^[\p{L}\p{N}_]$/u.test(ch) };

const SPECIAL = new Set(['\\', '(', ')', '[', ']', '{', '}', '|', '.', '^', '$', '*', '+', '?']);

/** Whether a quantifier at `at` lets the previous atom match zero times (or cannot be read). */
function allowsZero(source: string, at: number): boolean {
  const c = source[at];
  if (c === '?' || c === '*') return true;
  if (c === '{') return !/^\{[1-9]\d*(,\d*)?\}/.test(source.slice(at));
  return false;
}

/**
 * Whether every match of the source from `at` (up to the end of the enclosing alternative) begins
 * with a word character; returns the index after the first element when so, else -1.
 */
function firstIsWord(source: string, at: number, kind: BoundaryKind): number {
  const c = source[at];
  if (c === undefined) return -1;
  if (c === '(') {
    let i = at + 1;
    if (source.startsWith('?:', i)) i += 2;
    else if (source[i] === '?') return -1;
    // Every alternative of the group must itself begin with a word character.
    for (;;) {
      if (firstIsWord(source, i, kind) < 0) return -1;
      const end = skipAlternative(source, i);
      if (end < 0) return -1;
      if (source[end] === ')') {
        return allowsZero(source, end + 1) ? -1 : end + 1;
      }
      i = end + 1;
    }
  }
  if (SPECIAL.has(c)) return -1;
  const ch = String.fromCodePoint(source.codePointAt(at) as number);
  if (!kind.isWord(ch)) return -1;
  const next = at + ch.length;
  return allowsZero(source, next) ? -1 : next;
}

/** The index of the `|` or `)` that ends the alternative starting at `at` (-1: unbalanced). */
function skipAlternative(source: string, at: number): number {
  let depth = 0;
  let inClass = false;
  for (let i = at; i < source.length; i += 1) {
    const c = source[i];
    if (c === '\\') { i += 1; continue; }
    if (inClass) { if (c === ']') inClass = false; continue; }
    if (c === '[') inClass = true;
    else if (c === '(') depth += 1;
    else if (c === ')') { if (depth === 0) return i; depth -= 1; }
    else if (c === '|' && depth === 0) return i;
  }
  return depth === 0 ? source.length : -1;
}

/** Rewrites a leading `\b` of each top-level alternative to a lookbehind where the alternative must begin with a word character. */
export function fastLeadingBoundaries(source: string, kind: BoundaryKind): string {
  let out = '';
  let at = 0;
  for (;;) {
    const end = skipAlternative(source, at);
    if (end < 0 || (end < source.length && source[end] !== '|')) return source;
    const branch = source.slice(at, end);
    out += branch.startsWith('\\b') && firstIsWord(branch, 2, kind) >= 0 ? kind.lookbehind + branch.slice(2) : branch;
    if (end >= source.length) return out;
    out += '|';
    at = end + 1;
  }
}
