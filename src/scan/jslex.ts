/** A string literal found in JavaScript/TypeScript source. */
export interface StringLiteral {
  /** The literal's text between its quotes, escapes left as written. */
  raw: string;
  line: number;
  /** Up to 40 characters of code before the opening quote, for context. */
  before: string;
}

export interface LexedSource {
  literals: StringLiteral[];
  /** The source with comments and regex literals blanked out (newlines kept, so line numbers still match). */
  code: string;
  /** Like `code`, with string contents blanked too: for rules about calls, not data. */
  codeOnly: string;
}

// Characters that never start a comment, string, regex or template boundary, nor end a line.
const PLAIN = /[^"'`/{}\n]+/y;
const REGEX_AFTER = new Set(['(', ',', '=', ':', '[', '!', '&', '|', '?', '{', '}', ';', '+', '-', '*', '%', '~', '^', '<', '>', '\n', '']);
const REGEX_AFTER_WORDS = /(^|[^\w$])(return|typeof|case|do|else|in|of|new|delete|void|throw|yield|await)$/;

/**
 * A small tolerant lexer: enough to find string literals, comments and regex literals without a full parser.
 * Misreading a rare construct only shifts which text counts as a literal; it never throws.
 */
export function lexJavaScript(source: string): LexedSource {
  const literals: StringLiteral[] = [];
  const stringSpans: [number, number][] = [];
  const out: string[] = [];
  const templateDepth: number[] = [];
  let braceDepth = 0;
  let line = 1;
  let lastSignificant = '';
  let i = 0;
  const n = source.length;
  let chunkStart = 0;
  const flush = (to: number): void => {
    if (to > chunkStart) out.push(source.slice(chunkStart, to));
  };

  const readQuoted = (quote: string, start: number): number => {
    // Returns the index after the closing quote; template literals stop at `${`.
    let j = start;
    while (j < n) {
      const c = source[j];
      if (c === '\\') { if (source[j + 1] === '\n') line += 1; j += 2; continue; }
      if (c === '\n') { line += 1; if (quote !== '`') return j; }
      if (c === quote) return j + 1;
      if (quote === '`' && c === '$' && source[j + 1] === '{') return j;
      j += 1;
    }
    return n;
  };

  const lexString = (quote: string, start: number): number => {
    const startLine = line;
    const end = readQuoted(quote, start);
    const closed = source[end - 1] === quote && end - 1 >= start;
    const raw = source.slice(start, closed ? end - 1 : end);
    stringSpans.push([start, closed ? end - 1 : end]);
    literals.push({ raw, line: startLine, before: source.slice(Math.max(0, start - 41), start - 1) });
    if (quote === '`' && source[end] === '$' && source[end + 1] === '{') {
      templateDepth.push(braceDepth);
      braceDepth += 1;
      return end + 2;
    }
    return end;
  };

  while (i < n) {
    // Fast path: jump over runs of ordinary code with one sticky regex instead of a character loop.
    PLAIN.lastIndex = i;
    const plain = PLAIN.exec(source);
    if (plain) {
      const run = plain[0];
      const trimmed = run.trimEnd();
      if (trimmed.length > 0) {
        const last = trimmed[trimmed.length - 1] as string;
        lastSignificant = /[\w$]/.test(last) ? 'a' : last;
      }
      i += run.length;
      continue;
    }
    const c = source[i] as string;
    if (c === '\n') { line += 1; i += 1; lastSignificant = '\n'; continue; }
    if (c === ' ' || c === '\t' || c === '\r') { i += 1; continue; }
    if (c === '/' && source[i + 1] === '/') {
      flush(i);
      const end = source.indexOf('\n', i);
      i = end === -1 ? n : end;
      chunkStart = i;
      continue;
    }
    if (c === '/' && source[i + 1] === '*') {
      flush(i);
      const end = source.indexOf('*/', i + 2);
      const stop = end === -1 ? n : end + 2;
      const comment = source.slice(i, stop);
      const newlines = comment.split('\n').length - 1;
      line += newlines;
      out.push('\n'.repeat(newlines));
      i = stop;
      chunkStart = i;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      i = lexString(c, i + 1);
      lastSignificant = 'a';
      continue;
    }
    if (c === '/') {
      const prefix = source.slice(Math.max(0, i - 12), i).trimEnd();
      if (REGEX_AFTER.has(lastSignificant) || REGEX_AFTER_WORDS.test(prefix)) {
        let j = i + 1;
        let inClass = false;
        while (j < n && source[j] !== '\n') {
          const d = source[j];
          if (d === '\\') { j += 2; continue; }
          if (d === '[') inClass = true;
          else if (d === ']') inClass = false;
          else if (d === '/' && !inClass) break;
          j += 1;
        }
        // Regex bodies are blanked like comments: word lists such as /eval|exec|curl/ are not calls.
        flush(i);
        out.push('/re/');
        i = j + 1;
        chunkStart = i;
        lastSignificant = 'a';
        continue;
      }
    }
    if (c === '{') braceDepth += 1;
    if (c === '}') {
      braceDepth -= 1;
      if (templateDepth.length > 0 && templateDepth[templateDepth.length - 1] === braceDepth) {
        templateDepth.pop();
        i = lexString('`', i + 1);
        lastSignificant = 'a';
        continue;
      }
    }
    lastSignificant = /[\w$]/.test(c) ? 'a' : c;
    i += 1;
  }
  flush(n);
  return { literals, code: out.join(''), codeOnly: blankSpans(source, stringSpans, out.join('')) };
}

/**
 * Rebuilds the comment-free code with string contents replaced by spaces. Works on the original
 * source (spans index into it), then removes comments the same way `code` did by re-lexing the result.
 */
function blankSpans(source: string, spans: [number, number][], _code: string): string {
  const parts: string[] = [];
  let at = 0;
  for (const [from, to] of spans) {
    parts.push(source.slice(at, from));
    parts.push(source.slice(from, to).replace(/[^\n]/g, ' '));
    at = to;
  }
  parts.push(source.slice(at));
  return stripComments(parts.join(''));
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, (m) => m.replace(/[^\n]/g, ' '));
}
