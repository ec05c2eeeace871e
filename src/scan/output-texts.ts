/**
 * Collects every string an answer carries to the client, for output inspection. Nothing is left
 * out by position or name: every array item, every object member (its key too), `_meta`, `data`
 * and error bodies, at any depth. The walk is iterative (no recursion limit to hide behind) and
 * bounded by a byte budget instead; past the budget the caller must withhold the answer.
 */

/** Per string (and per container) overhead charged against the budget, so a million empty strings also exhaust it. */
const ITEM_COST = 16;

export interface CollectedTexts {
  texts: string[];
  /** Bytes charged against the budget (string lengths plus per-item overhead). */
  charged: number;
  /** True when the budget ran out before the walk finished: the answer was not fully inspected. */
  exhausted: boolean;
  /** Binary fields skipped because they really are base64 of their declared media type. */
  skippedBinary: number;
}

/**
 * Leading bytes of binary media types. A `blob`/`data` field is skipped only when it is strict
 * base64 and decodes to the signature of its declared `mimeType`; anything else is inspected
 * as text (a text payload in a field labelled image/png is exactly what an attacker would send).
 */
const SIGNATURES: Record<string, number[][]> = {
  'image/png': [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
  'image/jpeg': [[0xff, 0xd8, 0xff]],
  'image/gif': [[0x47, 0x49, 0x46, 0x38]],
  'image/webp': [[0x52, 0x49, 0x46, 0x46]],
  'image/bmp': [[0x42, 0x4d]],
  'audio/wav': [[0x52, 0x49, 0x46, 0x46]],
  'audio/x-wav': [[0x52, 0x49, 0x46, 0x46]],
  'audio/mpeg': [[0x49, 0x44, 0x33], [0xff, 0xfb], [0xff, 0xf3], [0xff, 0xf2]],
  'audio/ogg': [[0x4f, 0x67, 0x67, 0x53]],
  'audio/flac': [[0x66, 0x4c, 0x61, 0x43]],
  'application/pdf': [[0x25, 0x50, 0x44, 0x46]],
  'application/zip': [[0x50, 0x4b, 0x03, 0x04]],
  'application/gzip': [[0x1f, 0x8b]],
};

/** A key that is a short ASCII identifier (content, mimeType, x-note): nothing to inspect in it. */
const PLAIN_KEY = /^[A-Za-z0-9_$@.:-]{1,40}$/;

const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** True when `value` is strict base64 whose decoded bytes begin with a signature of `mimeType`. */
export function isBinaryOfType(value: string, mimeType: unknown): boolean {
  if (typeof mimeType !== 'string') return false;
  const signatures = SIGNATURES[mimeType.toLowerCase().split(';')[0]?.trim() ?? ''];
  if (signatures === undefined || value.length < 4 || !STRICT_BASE64.test(value)) return false;
  const head = Buffer.from(value.slice(0, 24), 'base64');
  return signatures.some((signature) => signature.every((byte, index) => head[index] === byte));
}

/** Walks `value` and returns its strings, charging each against `budgetBytes`. */
export function collectTexts(value: unknown, budgetBytes: number): CollectedTexts {
  const out: CollectedTexts = { texts: [], charged: 0, exhausted: false, skippedBinary: 0 };
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    if (typeof item === 'string') {
      out.charged += item.length + ITEM_COST;
      if (out.charged > budgetBytes) {
        out.exhausted = true;
        return out;
      }
      if (item.length > 0) out.texts.push(item);
      continue;
    }
    if (item === null || typeof item !== 'object') continue;
    out.charged += ITEM_COST;
    if (out.charged > budgetBytes) {
      out.exhausted = true;
      return out;
    }
    if (Array.isArray(item)) {
      for (let index = item.length - 1; index >= 0; index -= 1) stack.push(item[index]);
      continue;
    }
    const record = item as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const member = record[key];
      if ((key === 'blob' || key === 'data') && typeof member === 'string' && isBinaryOfType(member, record['mimeType'])) {
        out.skippedBinary += 1;
        continue;
      }
      stack.push(member);
      // Keys reach the client too (structured content is arbitrary JSON); a short plain
      // identifier cannot carry an instruction or a hidden character, so only other keys are read.
      if (!PLAIN_KEY.test(key)) stack.push(key);
    }
  }
  return out;
}
