import type { LexedSource, StringLiteral } from './jslex.js';

const PREFIX = /^[rRbBuUfF]{0,2}$/;

/**
 * A small tolerant Python lexer: comments, string literals with any prefix (r, b, u, f, rb, fr …),
 * single- or triple-quoted, and f-string replacement fields. Comments are blanked; in `codeOnly`
 * string contents are blanked too, except the `{expressions}` of f-strings, which are code.
 * Newlines are kept so line numbers match. Unterminated strings end at the end of the line (single
 * quotes) or of the file (triple quotes); it never throws.
 */
export function lexPython(source: string): LexedSource {
  const literals: StringLiteral[] = [];
  let code = '';
  let codeOnly = '';
  let line = 1;
  let i = 0;
  const n = source.length;
  while (i < n) {
    const ch = source[i] as string;
    if (ch === '#') {
      const end = source.indexOf('\n', i);
      const stop = end < 0 ? n : end;
      const blank = ' '.repeat(stop - i);
      code += blank;
      codeOnly += blank;
      i = stop;
      continue;
    }
    if (ch === '"' || ch === "'") {
      // The prefix letters were already copied as code; look back for them.
      const prefixMatch = /[A-Za-z]{0,2}$/.exec(code)?.[0] ?? '';
      const prefix = PREFIX.test(prefixMatch) ? prefixMatch.toLowerCase() : '';
      const raw = prefix.includes('r');
      const isF = prefix.includes('f');
      const triple = source.startsWith(ch.repeat(3), i);
      const quote = triple ? ch.repeat(3) : ch;
      const startLine = line;
      let j = i + quote.length;
      let body = '';
      let bodyCodeOnly = '';
      let depth = 0;
      while (j < n) {
        const c = source[j] as string;
        if (!triple && c === '\n') break;
        if (depth === 0 && source.startsWith(quote, j)) break;
        if (c === '\\' && !raw && j + 1 < n) {
          body += source.slice(j, j + 2);
          bodyCodeOnly += source[j + 1] === '\n' ? ' \n' : '  ';
          j += 2;
          continue;
        }
        if (isF && depth === 0 && (source.startsWith('{{', j) || source.startsWith('}}', j))) {
          body += source.slice(j, j + 2);
          bodyCodeOnly += '  ';
          j += 2;
          continue;
        }
        if (isF && c === '{') depth += 1;
        else if (isF && c === '}' && depth > 0) depth -= 1;
        body += c;
        bodyCodeOnly += c === '\n' ? '\n' : depth > 0 || (isF && c === '}') ? c : ' ';
        j += 1;
      }
      const closed = source.startsWith(quote, j);
      const end = closed ? j + quote.length : j;
      literals.push({ raw: body, line: startLine, before: code.slice(-40 - prefixMatch.length, code.length - prefixMatch.length) });
      code += source.slice(i, end);
      codeOnly += `${quote}${bodyCodeOnly}${closed ? quote : ''}`;
      for (const c of source.slice(i, end)) if (c === '\n') line += 1;
      i = end;
      continue;
    }
    if (ch === '\n') line += 1;
    code += ch;
    codeOnly += ch;
    i += 1;
  }
  return { literals, code, codeOnly };
}
