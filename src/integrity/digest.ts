// Self-describing digests ("sha256:<hex>", "sha3-512:<hex>") over bytes or canonical JSON, so a
// stored value always says how to recompute it and an algorithm change cannot pass silently.
import { createHash, timingSafeEqual } from 'node:crypto';
import canonicalize from 'canonicalize';

export type DigestAlgorithm = 'sha256' | 'sha3-512';

export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['sha256', 'sha3-512'];
export const DEFAULT_DIGEST_ALGORITHM: DigestAlgorithm = 'sha256';

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, 'sha3-512': 128 };

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
}

/** RFC 8785 (JCS) canonical JSON text; throws on values with no JSON form. */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value has no JSON form (undefined, a function or a symbol)');
  return text;
}

export function hashBytes(algorithm: DigestAlgorithm, data: Uint8Array | string): Buffer {
  return createHash(algorithm).update(data).digest();
}

export function digestBytes(data: Uint8Array | string, algorithm: DigestAlgorithm = DEFAULT_DIGEST_ALGORITHM): string {
  return `${algorithm}:${hashBytes(algorithm, data).toString('hex')}`;
}

/** Digest of a value's canonical JSON: key order and whitespace do not change it. */
export function digestJson(value: unknown, algorithm: DigestAlgorithm = DEFAULT_DIGEST_ALGORITHM): string {
  return digestBytes(canonicalJson(value), algorithm);
}

export class DigestFormatError extends Error {
  override name = 'DigestFormatError';
}

export function parseDigest(text: string): ParsedDigest {
  const colon = text.indexOf(':');
  const algorithm = text.slice(0, colon) as DigestAlgorithm;
  const hex = text.slice(colon + 1);
  if (colon < 0 || !DIGEST_ALGORITHMS.includes(algorithm)) {
    throw new DigestFormatError(`digest '${text.slice(0, 80)}' does not name a known algorithm; write sha256:<64 hex> or sha3-512:<128 hex>`);
  }
  if (hex.length !== HEX_LENGTH[algorithm] || !/^[0-9a-f]+$/.test(hex)) {
    throw new DigestFormatError(`digest '${text.slice(0, 80)}' must be ${algorithm}: followed by ${HEX_LENGTH[algorithm]} lower-case hex digits`);
  }
  return { algorithm, hex };
}

export function isDigest(text: string): boolean {
  try {
    parseDigest(text);
    return true;
  } catch {
    return false;
  }
}

/** Constant-time comparison of two self-describing digests; different algorithms never match. */
export function digestsEqual(a: string, b: string): boolean {
  const left = parseDigest(a);
  const right = parseDigest(b);
  if (left.algorithm !== right.algorithm) return false;
  return timingSafeEqual(Buffer.from(left.hex, 'hex'), Buffer.from(right.hex, 'hex'));
}

/** Recomputes the digest of `data` with the algorithm `expected` names and compares. */
export function verifyDigest(data: Uint8Array | string, expected: string): boolean {
  const { algorithm } = parseDigest(expected);
  return digestsEqual(digestBytes(data, algorithm), expected);
}
