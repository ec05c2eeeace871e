// Reads a YAML or JSON file into a document that can point back at lines, so every problem
// found later names file, line and field.
import { readFileSync } from 'node:fs';
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import type { PolicyProblem } from './errors.js';

export interface SourceDocument {
  file: string;
  value: unknown;
  /** Line and column of the value (or with `key`, of the key) at a path of map keys and list indexes. */
  at(path: readonly (string | number)[], key?: boolean): { line: number | undefined; column: number | undefined };
  problem(path: readonly (string | number)[], message: string, fix?: string, key?: boolean): PolicyProblem;
}

export type SourceResult = { ok: true; doc: SourceDocument } | { ok: false; problems: PolicyProblem[] };

export function readSource(file: string): SourceResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    return { ok: false, problems: [{ file, line: undefined, column: undefined, field: '', message: `cannot read the file (${reason})`, fix: 'check the path' }] };
  }
  return parseSource(text, file);
}

export function parseSource(text: string, file: string): SourceResult {
  const lineCounter = new LineCounter();
  // JSON is a subset of YAML 1.2, so one parser gives line numbers for both formats.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((error) => {
        const position = lineCounter.linePos(error.pos[0]);
        return { file, line: position.line, column: position.col, field: '', message: `syntax error: ${error.message.split('\n')[0] ?? ''}`, fix: 'fix the YAML/JSON syntax at this position' };
      }),
    };
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    return { ok: false, problems: [{ file, line: undefined, column: undefined, field: '', message: `cannot read the document (${(error as Error).message})`, fix: undefined }] };
  }
  const at = (path: readonly (string | number)[], key = false) => locate(doc, lineCounter, path, key);
  return {
    ok: true,
    doc: {
      file,
      value,
      at,
      problem: (path, message, fix, key = false) => ({ file, ...at(path, key), field: path.join('.'), message, fix }),
    },
  };
}

function locate(doc: Document, lineCounter: LineCounter, path: readonly (string | number)[], preferKey: boolean): { line: number | undefined; column: number | undefined } {
  let node: unknown = doc.contents;
  let keyNode: unknown;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === String(segment));
      if (pair === undefined) break;
      keyNode = pair.key;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      if (node.items[segment] === undefined) break;
      keyNode = undefined;
      node = node.items[segment];
    } else {
      break;
    }
  }
  const target = (preferKey && keyNode !== undefined ? keyNode : node ?? keyNode) as { range?: [number, number, number] } | undefined;
  const offset = target?.range?.[0];
  if (offset === undefined) return { line: undefined, column: undefined };
  const position = lineCounter.linePos(offset);
  return { line: position.line, column: position.col };
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
