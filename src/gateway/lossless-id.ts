import { isSharedResult, sharedText } from '../pipeline/index.js';

/**
 * Request ids beyond 2^53 (a client in a language with 64-bit integers may send them) lose
 * precision in JSON.parse, and the answer would carry a different id. Such an id is kept as its
 * exact decimal text in a marked string while the gateway holds the request, and written back
 * as the same bare number. A client's own string id that starts with the mark is refused, so a
 * string can never be turned into a number.
 */
const MARK = '\u0000bigint:';

/** Parses one client message; a large integer top-level `id` keeps its exact digits. */
export function parseMessage(text: string): unknown {
  const value: unknown = JSON.parse(text);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const record = value as Record<string, unknown>;
  const id = record['id'];
  if (typeof id === 'string' && id.startsWith(MARK)) {
    record['id'] = { refused: 'reserved id prefix' }; // not a string or number: classify refuses it
  } else if (typeof id === 'number' && Number.isInteger(id) && !Number.isSafeInteger(id)) {
    const lexeme = topLevelIdLexeme(text);
    // Only an integer lexeme is kept exactly; anything else keeps JSON.parse's value.
    if (lexeme !== undefined && /^-?(0|[1-9]\d*)$/.test(lexeme)) record['id'] = `${MARK}${lexeme}`;
  }
  return value;
}

/** Serializes an outgoing message, writing a kept large id back as the bare number it was. */
export function serializeMessage(message: object): string {
  const text = sharedResponseText(message) ?? JSON.stringify(message);
  const id = (message as { id?: unknown }).id;
  if (typeof id !== 'string' || !id.startsWith(MARK)) return text;
  // The id is the first string equal to the marked one: responses put `id` before their body,
  // and the mark cannot appear in client-sent strings' ids; to be safe, only the `"id":` member.
  return text.replace(`"id":${JSON.stringify(id)}`, `"id":${id.slice(MARK.length)}`);
}

/**
 * A response whose result many sessions share (a cached list page): its result's JSON text is
 * computed once and the envelope written around it, member by member in the message's own order,
 * as JSON.stringify would. undefined for any other message.
 */
function sharedResponseText(message: object): string | undefined {
  const record = message as Record<string, unknown>;
  const result = record['result'];
  if (!isSharedResult(result)) return undefined;
  const members: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (key === 'result') {
      const text = sharedText(result, 'json', () => JSON.stringify(result));
      if (text === undefined) return undefined;
      members.push(`"result":${text}`);
    } else if (value !== undefined) {
      const text = JSON.stringify(value) as string | undefined;
      if (text === undefined) return undefined;
      members.push(`${JSON.stringify(key)}:${text}`);
    }
  }
  return `{${members.join(',')}}`;
}

/** The source text of the last top-level "id" member's value, or undefined. */
export function topLevelIdLexeme(text: string): string | undefined {
  let depth = 0;
  let found: string | undefined;
  let i = 0;
  let expectKey = false;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"') {
      const end = stringEnd(text, i);
      if (end === -1) return undefined;
      if (depth === 1 && expectKey) {
        let key: unknown;
        try {
          key = JSON.parse(text.slice(i, end + 1));
        } catch {
          return undefined;
        }
        let j = end + 1;
        while (j < text.length && /\s/.test(text[j] as string)) j += 1;
        if (text[j] !== ':') return undefined;
        j += 1;
        while (j < text.length && /\s/.test(text[j] as string)) j += 1;
        if (key === 'id') {
          const match = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(j, j + 400));
          found = match?.[0];
        }
        expectKey = false;
        i = j;
        continue;
      }
      i = end + 1;
      continue;
    }
    if (ch === '{' || ch === '[') {
      depth += 1;
      expectKey = ch === '{' && depth === 1;
    } else if (ch === '}' || ch === ']') {
      depth -= 1;
    } else if (ch === ',' && depth === 1) {
      expectKey = true;
    }
    i += 1;
  }
  return found;
}

function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i += 1) {
    const ch = text[i];
    if (ch === '\\') i += 1;
    else if (ch === '"') return i;
  }
  return -1;
}
