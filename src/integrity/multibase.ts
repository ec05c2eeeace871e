// Base58btc multibase ("z" prefix) and Multikey encodings for Ed25519 keys, as the W3C Data
// Integrity specs use them: multicodec 0xed01 (public) and 0x8026 (private seed) before the bytes.

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const INDEX = new Map([...ALPHABET].map((char, index) => [char, index]));

export function base58Encode(bytes: Uint8Array): string {
  let zeros = 0;
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  let text = '';
  while (value > 0n) {
    text = ALPHABET[Number(value % 58n)] + text;
    value /= 58n;
  }
  return '1'.repeat(zeros) + text;
}

export function base58Decode(text: string): Uint8Array {
  let zeros = 0;
  while (zeros < text.length && text[zeros] === '1') zeros++;
  let value = 0n;
  for (const char of text) {
    const digit = INDEX.get(char);
    if (digit === undefined) throw new Error(`'${char}' is not a base58btc character`);
    value = value * 58n + BigInt(digit);
  }
  const body: number[] = [];
  while (value > 0n) {
    body.unshift(Number(value & 0xffn));
    value >>= 8n;
  }
  return Uint8Array.from([...new Array<number>(zeros).fill(0), ...body]);
}

export function multibaseEncode(bytes: Uint8Array): string {
  return `z${base58Encode(bytes)}`;
}

export function multibaseDecode(text: string): Uint8Array {
  if (!text.startsWith('z')) throw new Error(`multibase value must start with 'z' (base58btc); got '${text.slice(0, 1)}'`);
  return base58Decode(text.slice(1));
}

const ED25519_PUBLIC = Uint8Array.of(0xed, 0x01);
const ED25519_PRIVATE = Uint8Array.of(0x80, 0x26);

function withPrefix(prefix: Uint8Array, key: Uint8Array): string {
  return multibaseEncode(Uint8Array.from([...prefix, ...key]));
}

function withoutPrefix(prefix: Uint8Array, text: string, what: string): Uint8Array {
  const bytes = multibaseDecode(text);
  if (bytes.length !== prefix.length + 32 || bytes[0] !== prefix[0] || bytes[1] !== prefix[1]) {
    throw new Error(`'${text.slice(0, 16)}...' is not a Multikey ${what} (expected multicodec 0x${Buffer.from(prefix).toString('hex')} and 32 key bytes)`);
  }
  return bytes.slice(prefix.length);
}

export const ed25519PublicToMultikey = (raw: Uint8Array): string => withPrefix(ED25519_PUBLIC, raw);
export const ed25519PrivateToMultikey = (seed: Uint8Array): string => withPrefix(ED25519_PRIVATE, seed);
export const multikeyToEd25519Public = (text: string): Uint8Array => withoutPrefix(ED25519_PUBLIC, text, 'Ed25519 public key');
export const multikeyToEd25519Private = (text: string): Uint8Array => withoutPrefix(ED25519_PRIVATE, text, 'Ed25519 private key');
