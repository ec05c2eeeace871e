import { isMap, isSeq, isScalar, isPair, type Document, type LineCounter, type Node } from 'yaml';

/** A position in the source for a JSON-pointer-like path, walking the YAML document tree. */
export function locate(doc: Document, lineCounter: LineCounter, path: readonly string[], preferKey = false): { line: number; column: number } | undefined {
  let node: unknown = doc.contents;
  let keyNode: unknown;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === segment);
      if (pair === undefined) break;
      keyNode = pair.key;
      node = pair.value;
    } else if (isSeq(node)) {
      const index = Number(segment);
      if (!Number.isInteger(index) || node.items[index] === undefined) break;
      keyNode = undefined;
      node = node.items[index];
    } else {
      break;
    }
  }
  const target = (preferKey && keyNode !== undefined ? keyNode : node ?? keyNode) as Node | undefined;
  const offset = target?.range?.[0];
  if (offset === undefined) return undefined;
  const position = lineCounter.linePos(offset);
  return { line: position.line, column: position.col };
}
