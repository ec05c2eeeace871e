import type { UnicodeData } from './rules.js';

/** A version of a text field that patterns are matched against, and how it was obtained. */
export interface TextVariant {
  kind: 'raw' | 'cleaned' | 'confusables' | 'tags' | 'html-entities' | 'base64' | 'percent' | 'ansi-stripped';
  text: string;
}

const PLAIN_ASCII = /^[\t\n\r\x20-\x7e]*$/;

/**
 * Printable ASCII with tabs and newlines: no invisible, bidi, tag, control or escape character can
 * be in it, NFKC leaves it as it is and no confusable folds it. Most tool output is this, and the
 * per-character passes are skipped for it.
 */
export function isPlainAscii(text: string): boolean {
  return PLAIN_ASCII.test(text);
}

export function inRanges(cp: number, ranges: readonly [number, number][]): boolean {
  for (const [from, to] of ranges) if (cp >= from && cp <= to) return true;
  return false;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b(\[[0-?]*[ -/]*[@-~]|\][^\u0007\u001b]*(\u0007|\u001b\\)|[@-Z\\-_])/g;

export function hasAnsi(text: string): boolean {
  ANSI.lastIndex = 0;
  return ANSI.test(text);
}

/** Text hidden in Unicode tag characters (U+E0020..U+E007E mirror ASCII). */
export function decodeTagCharacters(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (cp >= 0xe0020 && cp <= 0xe007e) out += String.fromCharCode(cp - 0xe0000);
  }
  return out;
}

const NAMED_ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'", nbsp: ' ', sol: '/', colon: ':', lpar: '(', rpar: ')', period: '.', comma: ',', excl: '!', num: '#', tilde: '~' };

export function decodeHtmlEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]{1,6}|#\d{1,7}|[a-z]{2,8});?/gi, (whole, body: string) => {
    if (body.startsWith('#x') || body.startsWith('#X')) return safeFromCodePoint(Number.parseInt(body.slice(2), 16)) ?? whole;
    if (body.startsWith('#')) return safeFromCodePoint(Number.parseInt(body.slice(1), 10)) ?? whole;
    return NAMED_ENTITIES[body.toLowerCase()] ?? whole;
  });
}

function safeFromCodePoint(cp: number): string | undefined {
  return Number.isInteger(cp) && cp >= 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : undefined;
}

function printableRatio(text: string): number {
  if (text.length === 0) return 0;
  let printable = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if ((cp >= 0x20 && cp < 0x7f) || ch === '\n' || ch === '\t' || (cp >= 0xa0 && cp !== 0xfffd)) printable += 1;
  }
  return printable / [...text].length;
}

/** 1 for the code units of standard and URL-safe base64 (A-Z a-z 0-9 + / _ -). */
const BASE64_UNITS = (() => {
  const table = new Uint8Array(128);
  for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-') table[ch.charCodeAt(0)] = 1;
  return table;
})();

function isBase64Unit(unit: number): boolean {
  return unit < 128 && BASE64_UNITS[unit] === 1;
}

/**
 * The matches of /[A-Za-z0-9+/_-]{20,}={0,2}/g, found in one pass: the regex retries at every
 * position of every shorter run, which made it the costliest step of inspecting a large answer.
 */
export function base64Runs(text: string, minLength = 20): string[] {
  const runs: string[] = [];
  let start = -1;
  for (let i = 0; i <= text.length; i += 1) {
    if (i < text.length && isBase64Unit(text.charCodeAt(i))) {
      if (start < 0) start = i;
      continue;
    }
    if (start >= 0 && i - start >= minLength) {
      let end = i;
      while (end < text.length && end - i < 2 && text.charCodeAt(end) === 0x3d) end += 1;
      runs.push(text.slice(start, end));
      i = end - 1;
    }
    start = -1;
  }
  return runs;
}

/** Base64 (standard or URL-safe) runs that decode to readable text. */
export function decodeBase64Runs(text: string): string[] {
  const out: string[] = [];
  for (const run of base64Runs(text)) {
    // Identifiers and paths are also long runs of these characters; real base64 mixes cases and digits.
    if (!/[A-Z]/.test(run) || !/[a-z]/.test(run) || run.length % 4 === 1) continue;
    const decoded = Buffer.from(run.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8');
    if (decoded.length >= 12 && printableRatio(decoded) > 0.9 && /[a-z]{3,}\s/i.test(decoded)) out.push(decoded);
  }
  return out;
}

function decodePercent(text: string): string | undefined {
  if ((text.match(/%[0-9a-f]{2}/gi) ?? []).length < 3) return undefined;
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

const asciiKept = new WeakMap<UnicodeData, boolean>();

/** Whether cleanText keeps every printable ASCII character, tab and newline (no removed range reaches into them). */
function keepsAscii(unicode: UnicodeData): boolean {
  let kept = asciiKept.get(unicode);
  if (kept === undefined) {
    kept = true;
    for (let cp = 0; cp < 0x7f && kept; cp += 1) {
      if (!(cp === 9 || cp === 10 || cp === 13 || cp >= 0x20)) continue;
      if (inRanges(cp, unicode.zeroWidth) || inRanges(cp, unicode.bidi) || inRanges(cp, unicode.tags) || inRanges(cp, unicode.variationSelectorsSupplement)) kept = false;
    }
    asciiKept.set(unicode, kept);
  }
  return kept;
}

/** Removes invisible characters (zero-width, bidi, tags, variation selectors) and applies NFKC. */
export function cleanText(text: string, unicode: UnicodeData): string {
  const asciiSafe = keepsAscii(unicode);
  // Printable ASCII holds nothing to remove, no escape (so no ANSI sequence) and NFKC leaves it alone: most descriptions.
  if (asciiSafe && isPlainAscii(text)) return text;
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (asciiSafe && cp >= 0x20 && cp < 0x7f) { out += ch; continue; }
    if (inRanges(cp, unicode.zeroWidth) || inRanges(cp, unicode.bidi) || inRanges(cp, unicode.tags) || inRanges(cp, unicode.variationSelectorsSupplement)) continue;
    out += ch;
  }
  return out.replace(ANSI, '').normalize('NFKC');
}

export function foldConfusables(text: string, unicode: UnicodeData): string {
  let out = '';
  for (const ch of text) out += unicode.confusables.get(ch) ?? ch;
  return out;
}

/** The variants already computed in the current withVariantMemo scope (for its Unicode data only). */
let variantMemo: { unicode: UnicodeData; byText: Map<string, TextVariant[]> } | undefined;

/**
 * Runs `fn` with textVariants remembering its answers until `fn` returns: one metadata analysis reads each
 * field's text in several passes (the pattern rules, then the directive analysis). Nothing outlives the call.
 */
export function withVariantMemo<T>(unicode: UnicodeData, fn: () => T): T {
  const outer = variantMemo;
  variantMemo = { unicode, byText: new Map() };
  try {
    return fn();
  } finally {
    variantMemo = outer;
  }
}

/**
 * Every decoding an attacker might hide instructions behind, each matched separately. Inside withVariantMemo
 * the same array is returned for the same text: callers read it and do not change it.
 */
export function textVariants(text: string, unicode: UnicodeData): TextVariant[] {
  const memo = variantMemo?.unicode === unicode ? variantMemo.byText : undefined;
  const known = memo?.get(text);
  if (known !== undefined) return known;
  const variants = computeVariants(text, unicode);
  memo?.set(text, variants);
  return variants;
}

function computeVariants(text: string, unicode: UnicodeData): TextVariant[] {
  const variants: TextVariant[] = [{ kind: 'raw', text }];
  const plain = isPlainAscii(text);
  const cleaned = plain ? text : cleanText(text, unicode);
  if (cleaned !== text) variants.push({ kind: 'cleaned', text: cleaned });
  if (!plain) {
    const folded = foldConfusables(cleaned, unicode);
    if (folded !== cleaned) variants.push({ kind: 'confusables', text: folded });
    const tags = decodeTagCharacters(text);
    if (tags.length > 0) variants.push({ kind: 'tags', text: tags });
  }
  const entities = decodeHtmlEntities(cleaned);
  if (entities !== cleaned) variants.push({ kind: 'html-entities', text: entities });
  for (const decoded of decodeBase64Runs(cleaned)) variants.push({ kind: 'base64', text: decoded });
  const percent = decodePercent(cleaned);
  if (percent !== undefined && percent !== cleaned) variants.push({ kind: 'percent', text: percent });
  return variants;
}

/** Shannon entropy in bits per character. */
export function shannonEntropy(text: string): number {
  if (text.length === 0) return 0;
  const counts = new Map<string, number>();
  for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let bits = 0;
  const n = text.length;
  for (const count of counts.values()) {
    const p = count / n;
    bits -= p * Math.log2(p);
  }
  return bits;
}
