// W3C Data Integrity proofs over JCS (RFC 8785) canonical JSON, with no RDF processing:
//   eddsa-jcs-2022            Ed25519, as specified in W3C vc-di-eddsa
//   bastion-rsa-pss-jcs-2026  the same transformation and hashing, signed with RSA-PSS
//                             (SHA-256, MGF1-SHA-256, 32-byte salt, RSA >= 4096 bits)
// hashData = SHA-256(JCS(proofConfig)) || SHA-256(JCS(document without proof)).
import { constants, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { canonicalJson, hashBytes } from './digest.js';
import { defaultVerificationMethod, keyAlgorithm } from './keys.js';
import { multibaseDecode, multibaseEncode } from './multibase.js';

export const EDDSA_JCS_2022 = 'eddsa-jcs-2022';
export const RSA_PSS_JCS_2026 = 'bastion-rsa-pss-jcs-2026';
export type Cryptosuite = typeof EDDSA_JCS_2022 | typeof RSA_PSS_JCS_2026;
const RSA_PSS_SALT_LENGTH = 32;
const MAX_PROOF_VALUE_LENGTH = 1200;

export interface DataIntegrityProof {
  type: 'DataIntegrityProof';
  cryptosuite: Cryptosuite;
  created?: string;
  verificationMethod: string;
  proofPurpose: 'assertionMethod';
  '@context'?: unknown;
  proofValue: string;
  [extra: string]: unknown;
}

export type JsonObject = Record<string, unknown>;

export interface SignOptions {
  verificationMethod?: string;
  created?: Date;
}

const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

function cryptosuiteFor(key: KeyObject): Cryptosuite {
  return keyAlgorithm(key) === 'ed25519' ? EDDSA_JCS_2022 : RSA_PSS_JCS_2026;
}

export function hashData(proofConfig: JsonObject, document: JsonObject): Buffer {
  return Buffer.concat([hashBytes('sha256', canonicalJson(proofConfig)), hashBytes('sha256', canonicalJson(document))]);
}

function rawSign(suite: Cryptosuite, key: KeyObject, data: Buffer): Buffer {
  if (suite === EDDSA_JCS_2022) return cryptoSign(null, data, key);
  return cryptoSign('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: RSA_PSS_SALT_LENGTH, mgf1HashAlgorithm: 'sha256' } as Parameters<typeof cryptoSign>[2]);
}

function rawVerify(suite: Cryptosuite, key: KeyObject, data: Buffer, signature: Uint8Array): boolean {
  if (suite === EDDSA_JCS_2022) return cryptoVerify(null, data, key, signature);
  return cryptoVerify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: RSA_PSS_SALT_LENGTH }, signature);
}

/** Returns a copy of `document` with a `proof` added; an existing proof is replaced. */
export function signDocument<T extends JsonObject>(document: T, privateKey: KeyObject, options: SignOptions = {}): T & { proof: DataIntegrityProof } {
  const suite = cryptosuiteFor(privateKey);
  const { proof: _previous, ...unsecured } = document;
  const proofConfig: JsonObject = {
    type: 'DataIntegrityProof',
    cryptosuite: suite,
    created: (options.created ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    verificationMethod: options.verificationMethod ?? defaultVerificationMethod(privateKey),
    proofPurpose: 'assertionMethod',
  };
  if (unsecured['@context'] !== undefined) proofConfig['@context'] = unsecured['@context'];
  const signature = rawSign(suite, privateKey, hashData(proofConfig, unsecured));
  const proof = { ...proofConfig, proofValue: multibaseEncode(signature) } as DataIntegrityProof;
  return { ...(unsecured as T), proof };
}

export type ProofCheck = { ok: true; proof: DataIntegrityProof } | { ok: false; reason: 'unsigned' | 'malformed-proof' | 'unsupported-cryptosuite' | 'wrong-key-type' | 'bad-signature'; message: string };

/** Reads the proof of a secured document without checking it (to find which key to verify with). */
export function readProof(document: JsonObject): ProofCheck {
  const proof = document['proof'];
  if (proof === undefined) return { ok: false, reason: 'unsigned', message: 'the document has no proof (it is not signed); sign it with `bastion sign`' };
  if (!isObject(proof)) return { ok: false, reason: 'malformed-proof', message: 'proof must be a single object (proof sets are not accepted)' };
  if (proof['type'] !== 'DataIntegrityProof') return { ok: false, reason: 'malformed-proof', message: `proof.type must be DataIntegrityProof, not ${JSON.stringify(proof['type'])}` };
  if (proof['cryptosuite'] !== EDDSA_JCS_2022 && proof['cryptosuite'] !== RSA_PSS_JCS_2026) {
    return { ok: false, reason: 'unsupported-cryptosuite', message: `proof.cryptosuite ${JSON.stringify(proof['cryptosuite'])} is not accepted; use ${EDDSA_JCS_2022} or ${RSA_PSS_JCS_2026}` };
  }
  if (proof['proofPurpose'] !== 'assertionMethod') return { ok: false, reason: 'malformed-proof', message: 'proof.proofPurpose must be assertionMethod' };
  if (typeof proof['verificationMethod'] !== 'string' || proof['verificationMethod'].length === 0) return { ok: false, reason: 'malformed-proof', message: 'proof.verificationMethod must name the signing key' };
  if (typeof proof['proofValue'] !== 'string' || !proof['proofValue'].startsWith('z')) return { ok: false, reason: 'malformed-proof', message: 'proof.proofValue must be a base58btc multibase string (starting with z)' };
  // Base58 decoding is quadratic; no supported signature (RSA-4096: 512 bytes) needs more.
  if (proof['proofValue'].length > MAX_PROOF_VALUE_LENGTH) return { ok: false, reason: 'malformed-proof', message: `proof.proofValue is longer than any supported signature (${MAX_PROOF_VALUE_LENGTH} characters)` };
  if (proof['created'] !== undefined && (typeof proof['created'] !== 'string' || Number.isNaN(Date.parse(proof['created'])))) {
    return { ok: false, reason: 'malformed-proof', message: 'proof.created must be an XML Schema dateTime such as 2026-01-31T12:00:00Z' };
  }
  return { ok: true, proof: proof as DataIntegrityProof };
}

/** Checks the proof's signature with `publicKey`. Whether that key is trusted is the caller's question. */
export function verifyDocument(document: JsonObject, publicKey: KeyObject): ProofCheck {
  const read = readProof(document);
  if (!read.ok) return read;
  const { proofValue, ...proofConfig } = read.proof;
  const { proof: _proof, ...unsecured } = document;
  const key = publicKey.type === 'private' ? createPublicKey(publicKey) : publicKey;
  let expected: Cryptosuite;
  try {
    expected = cryptosuiteFor(key);
  } catch (error) {
    return { ok: false, reason: 'wrong-key-type', message: (error as Error).message };
  }
  if (expected !== proofConfig.cryptosuite) return { ok: false, reason: 'wrong-key-type', message: `the proof uses ${proofConfig.cryptosuite} but the key is for ${expected}` };
  if (proofConfig['@context'] !== undefined && !contextPrefixMatches(proofConfig['@context'], unsecured['@context'])) {
    return { ok: false, reason: 'malformed-proof', message: "proof['@context'] does not match the start of the document's @context" };
  }
  let signature: Uint8Array;
  try {
    signature = multibaseDecode(proofValue);
  } catch (error) {
    return { ok: false, reason: 'malformed-proof', message: `proof.proofValue: ${(error as Error).message}` };
  }
  const valid = rawVerify(expected, key, hashData(proofConfig, unsecured), signature);
  if (!valid) return { ok: false, reason: 'bad-signature', message: 'the signature does not match the document: it was changed after signing, or signed by another key' };
  return read;
}

function contextPrefixMatches(proofContext: unknown, documentContext: unknown): boolean {
  const wanted = Array.isArray(proofContext) ? proofContext : [proofContext];
  const have = Array.isArray(documentContext) ? documentContext : [documentContext];
  return wanted.every((entry, index) => canonicalJson(entry) === canonicalJson(have[index] ?? null));
}
