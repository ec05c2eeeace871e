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
  /** What replaces a leading `\b` in the source (no word character before). */
  lookbehind: string;
  /** What replaces a `\b` after a word character (no word character after). */
  lookahead: string;
  /** Whether a literal character (as written in the source, flags iu) is certainly in the word class. */
  isWord: (ch: string) => boolean;
}

/** JavaScript's own \b under flags iu: \w extended by case folding, so every ASCII letter's variants (ſ, K) are word characters. */
export const ASCII_BOUNDARY: BoundaryKind = { lookbehind: '(?<!\\w)', lookahead: '(?!\\w)', isWord: (ch) => /^[A-Za-z0-9_]$/.test(ch) };

/** concepts.ts's Unicode boundary over [\p{L}\p{N}_] (case-closed under iu too). */
export const UNICODE_WORD_BOUNDARY: BoundaryKind = { lookbehind: '(?<![\\p{L}\\p{N}_])', lookahead: '(?![\\p{L}\\p{N}_])', isWord: (ch) => /^[\p{L}\p{N}_]$/u.test(ch) };

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
  // \w and \d: every match is a word character in both kinds (WORD_ESCAPES), so `\b\d{1,3}` opens with a lookbehind too.
  if (c === '\\' && WORD_ESCAPES.has(source[at + 1] ?? '')) return allowsZero(source, at + 2) ? -1 : at + 2;
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

/** Escapes whose every match is a word character in both kinds (\w under iu is case-closed like the kinds' classes). */
const WORD_ESCAPES = new Set(['w', 'd']);

const ESCAPE_BODY: Record<string, RegExp> = { p: /^\{[^}]*\}/, P: /^\{[^}]*\}/, u: /^(?:\{[0-9a-fA-F]+\}|[0-9a-fA-F]{4})/, x: /^[0-9a-fA-F]{2}/, c: /^[A-Za-z]/, k: /^<[^>]*>/ };

interface GroupFrame {
  /** Whether the text before the group certainly ends with a word character. */
  before: boolean;
  /** Per finished alternative: whether it certainly ends with a word character. */
  alternatives: boolean[];
  /** A lookaround: zero width, and its \b are left as written. */
  lookaround: boolean;
}

/** The length of the quantifier at `at` (0: none) and whether it requires at least one repetition. */
function quantifier(source: string, at: number): { length: number; atLeastOne: boolean } {
  const c = source[at];
  let length = 0;
  let atLeastOne = false;
  if (c === '+') { length = 1; atLeastOne = true; }
  else if (c === '*' || c === '?') length = 1;
  else if (c === '{') {
    const m = /^\{(\d+)(,\d*)?\}/.exec(source.slice(at));
    if (m) { length = m[0].length; atLeastOne = Number(m[1]) > 0; }
  }
  if (length > 0 && source[at + length] === '?') length += 1;
  return { length, atLeastOne };
}

/**
 * Whether the text certainly ends with a word character after an atom: a repeated atom that may match zero
 * times leaves either its own last character or the one before it.
 */
function endsWord(before: boolean, atomWord: boolean, q: { length: number; atLeastOne: boolean }): boolean {
  return q.length === 0 || q.atLeastOne ? atomWord : before && atomWord;
}

/**
 * Rewrites each `\b` (outside a class and a lookaround) whose neighbour on one side is certainly a word
 * character to a single lookaround on the other side: after a word character, `\b` holds exactly when no
 * word character follows (`(?!\w)`), and before one exactly when none precedes (`(?<!\w)`). One class
 * instead of concepts.ts's four-class Unicode boundary: cheaper to compile (the classes are most of a
 * concept pattern's compile time) and to run. What the walk does not understand is left as written.
 */
export function fastInnerBoundaries(source: string, kind: BoundaryKind): string {
  let out = '';
  // Whether the text matched so far certainly ends with a word character.
  let lastWord = false;
  const stack: GroupFrame[] = [];
  const inLookaround = (): boolean => stack.some((f) => f.lookaround);
  for (let i = 0; i < source.length;) {
    const c = source[i] as string;
    if (c === '\\') {
      const next = source[i + 1];
      if (next === undefined) return source;
      if (next === 'b' && !inLookaround()) {
        if (lastWord) out += kind.lookahead;
        else if (firstIsWord(source, i + 2, kind) >= 0) out += kind.lookbehind;
        else out += '\\b';
        i += 2;
        continue;
      }
      out += c + next;
      i += 2;
      if (next === 'b' || next === 'B') continue;
      // Escapes with a body (\p{..}, \u{..}, \uXXXX, \xXX, \cX, \k<..>): copied as written, never word-certain.
      const body = ESCAPE_BODY[next]?.exec(source.slice(i))?.[0] ?? '';
      out += body;
      i += body.length;
      const q = quantifier(source, i);
      lastWord = endsWord(lastWord, WORD_ESCAPES.has(next), q);
      out += source.slice(i, i + q.length);
      i += q.length;
      continue;
    }
    if (c === '[') {
      let j = i + 1;
      if (source[j] === '^') j += 1;
      while (j < source.length && source[j] !== ']') j += source[j] === '\\' ? 2 : 1;
      if (j >= source.length) return source;
      const q = quantifier(source, j + 1);
      out += source.slice(i, j + 1 + q.length);
      i = j + 1 + q.length;
      lastWord = endsWord(lastWord, false, q);
      continue;
    }
    if (c === '(') {
      const look = /^\(\?<?[=!]/.exec(source.slice(i));
      const open = look ? look[0] : source.startsWith('(?:', i) ? '(?:' : /^\(\?<[A-Za-z_$][\w$]*>/.exec(source.slice(i))?.[0] ?? (source[i + 1] === '?' ? undefined : '(');
      if (open === undefined) return source;
      stack.push({ before: lastWord, alternatives: [], lookaround: look !== null });
      out += open;
      i += open.length;
      continue;
    }
    if (c === '|') {
      const frame = stack[stack.length - 1];
      frame?.alternatives.push(lastWord);
      lastWord = frame ? frame.before : false;
      out += c;
      i += 1;
      continue;
    }
    if (c === ')') {
      const frame = stack.pop();
      if (!frame) return source;
      frame.alternatives.push(lastWord);
      const q = quantifier(source, i + 1);
      lastWord = frame.lookaround ? frame.before : endsWord(frame.before, frame.alternatives.every(Boolean), q);
      out += source.slice(i, i + 1 + q.length);
      i += 1 + q.length;
      continue;
    }
    if (SPECIAL.has(c) && c !== '{' && c !== '}') {
      // ., ^, $ and a stray quantifier: nothing certain about the last character.
      lastWord = false;
      out += c;
      i += 1;
      continue;
    }
    const ch = String.fromCodePoint(source.codePointAt(i) as number);
    const q = quantifier(source, i + ch.length);
    lastWord = endsWord(lastWord, kind.isWord(ch), q);
    out += source.slice(i, i + ch.length + q.length);
    i += ch.length + q.length;
  }
  return stack.length === 0 ? out : source;
}

/** fastLeadingBoundaries, then fastInnerBoundaries for every `\b` left: what concepts.ts and directives.ts compile. */
export function fastBoundaries(source: string, kind: BoundaryKind): string {
  return fastInnerBoundaries(fastLeadingBoundaries(source, kind), kind);
}

/** A Unicode word boundary: JavaScript's \\b only knows ASCII letters, so "\\bdevi\\b" would match inside "dévié" and miss "обязательно". */
const UNICODE_BOUNDARY = '(?:(?<![\\p{L}\\p{N}_])(?=[\\p{L}\\p{N}_])|(?<=[\\p{L}\\p{N}_])(?![\\p{L}\\p{N}_]))';

/** Rewrites every \\b outside a character class to the Unicode boundary. */
export function unicodeBoundaries(source: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < source.length; i += 1) {
    const ch = source[i] as string;
    if (ch === '\\') {
      const next = source[i + 1] ?? '';
      out += !inClass && next === 'b' ? UNICODE_BOUNDARY : ch + next;
      i += 1;
      continue;
    }
    if (ch === '[') inClass = true;
    else if (ch === ']') inClass = false;
    out += ch;
  }
  return out;
}
