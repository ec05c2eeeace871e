import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { canonicalJson } from './digest.js';
import { ed25519KeyFrom } from './publisher.js';

/**
 * Small Ed25519 signing over canonical JSON (RFC 8785) for Bastion's own scan documents
 * (reputation files, pentest attestations, certifications). The document is signed without its
 * `proof`; the proof's own fields except `signatureValue` are signed too, so they cannot be swapped.
 */
export interface Proof {
  type: 'Ed25519Signature-JCS';
  created: string;
  /** Key id of the signer, looked up in a trusted-keys list. */
  verificationMethod: string;
  signatureValue: string;
}

export interface TrustedKey {
  id: string;
  /** PEM (SPKI), base64 of the DER SPKI, or multibase `z6Mk…` / `did:key:z6Mk…` (Ed25519). */
  publicKey: string;
  /** What the key may sign: `certification`, `pentest`, `reputation`. Absent = any. */
  purposes?: string[];
}

export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SignatureError';
  }
}

/** PEM or base64 DER SPKI, or a multibase/did:key Ed25519 key. */
function publicKeyObject(text: string): KeyObject {
  return ed25519KeyFrom(text);
}

export function loadPrivateKey(path: string): KeyObject {
  const key = createPrivateKey(readFileSync(path));
  if (key.asymmetricKeyType !== 'ed25519') throw new SignatureError(`${path}: expected an Ed25519 private key (PEM PKCS#8), got ${key.asymmetricKeyType ?? 'unknown'}`);
  return key;
}

function signingInput(doc: Record<string, unknown>, proof: Omit<Proof, 'signatureValue'>): Buffer {
  const { proof: _ignored, ...body } = doc;
  return Buffer.from(canonicalJson({ document: body, proof }), 'utf8');
}

export function signDocument<T extends Record<string, unknown>>(doc: T, privateKey: KeyObject, keyId: string, created = new Date()): T & { proof: Proof } {
  const proofBase = { type: 'Ed25519Signature-JCS' as const, created: created.toISOString(), verificationMethod: keyId };
  const signature = sign(null, signingInput(doc, proofBase), privateKey).toString('base64url');
  return { ...doc, proof: { ...proofBase, signatureValue: signature } };
}

/** Verifies the proof against the trusted keys; throws SignatureError saying what is wrong. Returns the signer. */
export function verifyDocument(doc: unknown, trusted: TrustedKey[], purpose: string, what: string): TrustedKey {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new SignatureError(`${what}: not a JSON object`);
  const proof = (doc as { proof?: unknown }).proof;
  if (typeof proof !== 'object' || proof === null) throw new SignatureError(`${what}: has no proof; sign it first`);
  const p = proof as Partial<Proof>;
  if (p.type !== 'Ed25519Signature-JCS' || typeof p.signatureValue !== 'string' || typeof p.verificationMethod !== 'string' || typeof p.created !== 'string') {
    throw new SignatureError(`${what}: proof must have type Ed25519Signature-JCS, created, verificationMethod and signatureValue`);
  }
  const key = trusted.find((k) => k.id === p.verificationMethod);
  if (!key) throw new SignatureError(`${what}: signed by ${p.verificationMethod}, which is not in the trusted list`);
  if (key.purposes && !key.purposes.includes(purpose)) throw new SignatureError(`${what}: key ${key.id} is trusted, but not for ${purpose}`);
  const ok = verify(null, signingInput(doc as Record<string, unknown>, { type: p.type, created: p.created, verificationMethod: p.verificationMethod }), publicKeyObject(key.publicKey), Buffer.from(p.signatureValue, 'base64url'));
  if (!ok) throw new SignatureError(`${what}: signature by ${key.id} does not verify (the document was changed after signing, or the key is wrong)`);
  return key;
}

/** Trusted keys file: `{ "keys": [{ "id", "publicKey", "purposes"? }] }`. */
export function loadTrustedKeys(path: string): TrustedKey[] {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new SignatureError(`${path}: cannot read trusted keys (${(error as Error).message})`);
  }
  const keys = (doc as { keys?: unknown }).keys;
  if (!Array.isArray(keys)) throw new SignatureError(`${path}: expected { "keys": [ { "id", "publicKey" } ] }`);
  return keys.map((k, i) => {
    const key = k as Partial<TrustedKey>;
    if (typeof key.id !== 'string' || typeof key.publicKey !== 'string') throw new SignatureError(`${path}: keys[${i}] needs string id and publicKey`);
    try {
      publicKeyObject(key.publicKey);
    } catch (error) {
      throw new SignatureError(`${path}: keys[${i}] (${key.id}): publicKey is not a valid SPKI key (${(error as Error).message})`);
    }
    return { id: key.id, publicKey: key.publicKey, ...(Array.isArray(key.purposes) ? { purposes: key.purposes.filter((x): x is string => typeof x === 'string') } : {}) };
  });
}

export function publicKeyPem(privateKey: KeyObject): string {
  return createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
}
