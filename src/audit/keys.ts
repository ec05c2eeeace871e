import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeSync, fsyncSync } from 'node:fs';
import { dirname } from 'node:path';

/** An Ed25519 key as C2SP signed-note uses it: a name, the raw public key and its 4-byte key id. */
export interface NoteVerifier {
  name: string;
  publicKey: KeyObject;
  raw: Buffer;
  keyId: Buffer;
}

export interface NoteSigner extends NoteVerifier {
  privateKey: KeyObject;
}

const ED25519_SIGNATURE_TYPE = 0x01;

/** C2SP signed-note key id: the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key). */
export function noteKeyId(name: string, raw: Buffer): Buffer {
  return createHash('sha256').update(name).update(Buffer.from([0x0a, ED25519_SIGNATURE_TYPE])).update(raw).digest().subarray(0, 4);
}

export function rawPublicKey(publicKey: KeyObject): Buffer {
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new Error(`the audit key must be Ed25519, got ${publicKey.asymmetricKeyType ?? 'a non-asymmetric key'}`);
  const jwk = publicKey.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string') throw new Error('could not export the Ed25519 public key');
  return Buffer.from(jwk.x, 'base64url');
}

export function verifierFor(name: string, publicKey: KeyObject): NoteVerifier {
  checkKeyName(name);
  const raw = rawPublicKey(publicKey);
  return { name, publicKey, raw, keyId: noteKeyId(name, raw) };
}

function checkKeyName(name: string): void {
  if (name.length === 0 || /[\s+]/.test(name)) throw new Error(`audit key name '${name}' must be non-empty and contain no spaces or '+'`);
}

/** The C2SP verifier key string: `<name>+<hex key id>+<base64(0x01 || public key)>`. */
export function vkeyOf(verifier: NoteVerifier): string {
  return `${verifier.name}+${verifier.keyId.toString('hex')}+${Buffer.concat([Buffer.from([ED25519_SIGNATURE_TYPE]), verifier.raw]).toString('base64')}`;
}

export function parseVkey(text: string): NoteVerifier {
  const parts = text.trim().split('+');
  if (parts.length !== 3) throw new Error('a verifier key has the form <name>+<hex key id>+<base64 key>');
  const [name, idHex, keyB64] = parts as [string, string, string];
  const decoded = Buffer.from(keyB64, 'base64');
  if (decoded.length !== 33 || decoded[0] !== ED25519_SIGNATURE_TYPE) throw new Error('the verifier key is not an Ed25519 (type 0x01) key');
  const raw = decoded.subarray(1);
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  const verifier = verifierFor(name, publicKey);
  if (verifier.keyId.toString('hex') !== idHex.toLowerCase()) throw new Error(`the verifier key's id ${idHex} does not match its name and key`);
  return verifier;
}

/**
 * Reads a public key given as a PEM file (SPKI or PKCS8: the public half is used), a file holding
 * a C2SP vkey, or a vkey string. `defaultName` names PEM keys, which carry no name.
 */
export function loadVerifier(source: string, defaultName: string): NoteVerifier {
  const text = existsSync(source) ? readFileSync(source, 'utf8') : source;
  if (text.includes('-----BEGIN')) {
    const publicKey = text.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(text)) : createPublicKey(text);
    return verifierFor(defaultName, publicKey);
  }
  if (text.includes('+')) return parseVkey(text);
  throw new Error(`'${source}' is neither a PEM public key file nor a verifier key (<name>+<id>+<key>)`);
}

/**
 * Loads the signing key, creating it (Ed25519, PKCS8 PEM, mode 0600) when absent. A key file that
 * others can read is refused: whoever reads it can forge checkpoints.
 */
export function loadOrCreateSigningKey(path: string, name: string): { signer: NoteSigner; created: boolean } {
  let created = false;
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const fd = openSync(path, 'wx', 0o600);
    try {
      writeSync(fd, pem);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    created = true;
  }
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) throw new Error(`audit signing key ${path} has mode ${mode.toString(8)}: others can read it. Run chmod 600 ${path}`);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(readFileSync(path));
  } catch (error) {
    throw new Error(`audit signing key ${path} is not a PEM private key: ${(error as Error).message}`, { cause: error });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`audit signing key ${path} is ${privateKey.asymmetricKeyType ?? 'unknown'}, not Ed25519. Remove it to have a new one generated, or point audit.checkpoint.keyFile at an Ed25519 PKCS8 PEM`);
  const verifier = verifierFor(name, createPublicKey(privateKey));
  return { signer: { ...verifier, privateKey }, created };
}

export function publicKeyPem(verifier: NoteVerifier): string {
  return verifier.publicKey.export({ format: 'pem', type: 'spki' }).toString();
}
