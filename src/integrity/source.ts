// YAML or JSON files read with positions, so every problem names file, line and field.
import { readFileSync } from 'node:fs';
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Document } from 'yaml';

export interface IntegrityProblem {
  file: string;
  line: number | undefined;
  field: string;
  message: string;
}

export class IntegrityFileError extends Error {
  override name = 'IntegrityFileError';
  constructor(readonly problems: IntegrityProblem[]) {
    super(problems.map(formatIntegrityProblem).join('\n'));
  }
}

export function formatIntegrityProblem(problem: IntegrityProblem): string {
  const where = `${problem.file}${problem.line === undefined ? '' : `:${problem.line}`}`;
  return `${where}: ${problem.field === '' ? '' : `${problem.field}: `}${problem.message}`;
}

export interface SourceFile {
  file: string;
  value: unknown;
  lineOf(path: readonly (string | number)[]): number | undefined;
}

export function parseSourceText(text: string, file: string): SourceFile {
  const lineCounter = new LineCounter();
  // JSON is YAML 1.2, so one parser reads both and keeps positions for both.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new IntegrityFileError(doc.errors.map((error) => ({ file, line: lineCounter.linePos(error.pos[0]).line, field: '', message: `syntax error: ${error.message.split('\n')[0] ?? ''}` })));
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  return { file, value, lineOf: (path) => locate(doc, lineCounter, path) };
}

export function readSourceFile(file: string): SourceFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new IntegrityFileError([{ file, line: undefined, field: '', message: `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})` }]);
  }
  return parseSourceText(text, file);
}

function locate(doc: Document, lineCounter: LineCounter, path: readonly (string | number)[]): number | undefined {
  let node: unknown = doc.contents;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === String(segment));
      if (pair === undefined) break;
      node = pair.value ?? pair.key;
    } else if (isSeq(node)) {
      const next = node.items[Number(segment)];
      if (next === undefined) break;
      node = next;
    } else {
      break;
    }
  }
  const offset = (node as { range?: [number, number, number] } | undefined)?.range?.[0];
  return offset === undefined ? undefined : lineCounter.linePos(offset).line;
}

/** Splits an ajv instancePath ("/tools/0/name") into path segments. */
export function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part));
}
