// Signing keys: Ed25519 (default) and RSA-4096 for RSA-PSS. Private keys live in PKCS#8 PEM;
// public keys are shared as SPKI PEM and, for Ed25519, as a Multikey (publicKeyMultibase).
import { createPrivateKey, createPublicKey, generateKeyPair as generateKeyPairCallback, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { digestBytes } from './digest.js';
import { ed25519PrivateToMultikey, ed25519PublicToMultikey, multikeyToEd25519Private, multikeyToEd25519Public } from './multibase.js';

const generate = promisify(generateKeyPairCallback);

export type KeyAlgorithm = 'ed25519' | 'rsa-4096';
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['ed25519', 'rsa-4096'];
export const MIN_RSA_BITS = 4096;

export interface KeyPair {
  algorithm: KeyAlgorithm;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export async function generateKeyPair(algorithm: KeyAlgorithm = 'ed25519'): Promise<KeyPair> {
  if (algorithm === 'ed25519') {
    const { privateKey, publicKey } = await generate('ed25519');
    return { algorithm, privateKey, publicKey };
  }
  const { privateKey, publicKey } = await generate('rsa', { modulusLength: 4096, publicExponent: 0x10001 });
  return { algorithm, privateKey, publicKey };
}

/** Which of the supported algorithms a key is for; throws for anything else (including short RSA keys). */
export function keyAlgorithm(key: KeyObject): KeyAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) throw new Error(`RSA key has ${bits} bits; Bastion requires at least ${MIN_RSA_BITS}`);
    return 'rsa-4096';
  }
  throw new Error(`unsupported key type '${key.asymmetricKeyType ?? key.type}': use Ed25519 or RSA-4096`);
}

export const privateKeyToPem = (key: KeyObject): string => key.export({ type: 'pkcs8', format: 'pem' }).toString();
export const publicKeyToPem = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }).toString();

export function loadPrivateKey(pem: string): KeyObject {
  const key = createPrivateKey(pem);
  keyAlgorithm(key);
  return key;
}

export function publicKeyToMultibase(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (key.asymmetricKeyType !== 'ed25519' || typeof jwk.x !== 'string') throw new Error('only Ed25519 public keys have a Multikey form here');
  return ed25519PublicToMultikey(Buffer.from(jwk.x, 'base64url'));
}

export function publicKeyFromMultibase(text: string): KeyObject {
  const raw = multikeyToEd25519Public(text);
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

/** An Ed25519 private key from its Multikey form (0x8026 + 32-byte seed), as the W3C vectors publish it. */
export function privateKeyFromMultibase(text: string): KeyObject {
  const seed = multikeyToEd25519Private(text);
  const pkcs8Prefix = Buffer.from('302e020100300506032b657004220420', 'hex');
  return createPrivateKey({ key: Buffer.concat([pkcs8Prefix, seed]), format: 'der', type: 'pkcs8' });
}

export function privateKeyToMultibase(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (key.asymmetricKeyType !== 'ed25519' || typeof jwk.d !== 'string') throw new Error('only Ed25519 private keys have a Multikey form here');
  return ed25519PrivateToMultikey(Buffer.from(jwk.d, 'base64url'));
}

/** A public key written as publicKeyMultibase (Ed25519) or PEM (either algorithm). */
export function loadPublicKey(text: string): KeyObject {
  const trimmed = text.trim();
  const key = trimmed.startsWith('-----BEGIN') ? createPublicKey(trimmed) : publicKeyFromMultibase(trimmed);
  keyAlgorithm(key);
  return key;
}

/** Stable identity of a public key: the digest of its SPKI DER encoding. */
export function keyFingerprint(key: KeyObject): string {
  return digestBytes(key.export({ type: 'spki', format: 'der' }));
}

/**
 * The verificationMethod a Bastion signature names: `did:key:<multikey>#<multikey>` for Ed25519
 * (self-describing), `urn:bastion:key:<fingerprint>` for RSA. Verifiers look it up in the
 * trusted-signers file; it is never dereferenced over the network.
 */
export function defaultVerificationMethod(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  if (keyAlgorithm(publicKey) === 'ed25519') {
    const multikey = publicKeyToMultibase(publicKey);
    return `did:key:${multikey}#${multikey}`;
  }
  return `urn:bastion:key:${keyFingerprint(publicKey)}`;
}
