// The trusted-signers file: which publishers' keys Bastion accepts, for which manifest names,
// during which dates, and which keys are revoked. Anything not listed is refused.
import type { KeyObject } from 'node:crypto';
import { defaultVerificationMethod, keyAlgorithm, keyFingerprint, loadPublicKey, publicKeyToMultibase } from './keys.js';
import { validateAgainst } from './schemas.js';
import { IntegrityFileError, parseSourceText, readSourceFile, type SourceFile } from './source.js';

export interface TrustedKey {
  publisher: string;
  namespaces: string[];
  publicKey: KeyObject;
  /** Verification methods a proof may name for this key. */
  ids: string[];
  fingerprint: string;
  notBefore?: Date;
  notAfter?: Date;
}

export interface Revocation {
  key: string;
  revokedAt: Date;
  reason: string;
}

export interface TrustedSigners {
  file: string;
  keys: TrustedKey[];
  revocations: Revocation[];
}

interface SignersFile {
  signers: { publisher: string; namespaces: string[]; keys: { id?: string; publicKeyMultibase?: string; publicKeyPem?: string; notBefore?: string; notAfter?: string }[] }[];
  revocations?: { key: string; revokedAt: string; reason: string }[];
}

function fromSource(source: SourceFile): TrustedSigners {
  validateAgainst('trusted-signers.schema.json', source);
  const parsed = source.value as SignersFile;
  const keys: TrustedKey[] = [];
  parsed.signers.forEach((signer, signerIndex) => {
    signer.keys.forEach((entry, keyIndex) => {
      let publicKey: KeyObject;
      try {
        publicKey = loadPublicKey(entry.publicKeyMultibase ?? entry.publicKeyPem ?? '');
      } catch (error) {
        const field = entry.publicKeyMultibase === undefined ? 'publicKeyPem' : 'publicKeyMultibase';
        const path = ['signers', signerIndex, 'keys', keyIndex, field];
        throw new IntegrityFileError([{ file: source.file, line: source.lineOf(path), field: path.join('.'), message: `not a usable public key: ${(error as Error).message}` }]);
      }
      const ids = [defaultVerificationMethod(publicKey), ...(entry.id === undefined ? [] : [entry.id])];
      const key: TrustedKey = { publisher: signer.publisher, namespaces: signer.namespaces, publicKey, ids, fingerprint: keyFingerprint(publicKey) };
      if (entry.notBefore !== undefined) key.notBefore = new Date(entry.notBefore);
      if (entry.notAfter !== undefined) key.notAfter = new Date(entry.notAfter);
      keys.push(key);
    });
  });
  const revocations = (parsed.revocations ?? []).map((entry) => ({ key: entry.key, revokedAt: new Date(entry.revokedAt), reason: entry.reason }));
  return { file: source.file, keys, revocations };
}

export const loadTrustedSigners = (file: string): TrustedSigners => fromSource(readSourceFile(file));
export const parseTrustedSigners = (text: string, file = '<signers>'): TrustedSigners => fromSource(parseSourceText(text, file));

/** `*` matches any run of characters; everything else matches itself. */
export function namespaceMatches(pattern: string, name: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === name;
  const first = parts[0] ?? '';
  const last = parts[parts.length - 1] ?? '';
  if (!name.startsWith(first) || !name.endsWith(last) || name.length < first.length + last.length) return false;
  let position = first.length;
  for (const middle of parts.slice(1, -1)) {
    const found = name.indexOf(middle, position);
    if (found < 0 || found + middle.length > name.length - last.length) return false;
    position = found + middle.length;
  }
  return true;
}

export type SignerRefusal = 'unknown-key' | 'revoked' | 'expired' | 'not-yet-valid' | 'out-of-namespace';

export type SignerDecision = { ok: true; key: TrustedKey } | { ok: false; reason: SignerRefusal; message: string; key?: TrustedKey };

function revocationFor(signers: TrustedSigners, key: TrustedKey): Revocation | undefined {
  const names = new Set<string>([key.fingerprint, ...key.ids]);
  if (keyAlgorithm(key.publicKey) === 'ed25519') names.add(publicKeyToMultibase(key.publicKey));
  return signers.revocations.find((revocation) => names.has(revocation.key));
}

/**
 * Decides whether the key a proof names may sign `manifestName` at time `now`. A revoked key is
 * refused whatever the proof's `created` says: a stolen key can backdate its signatures.
 */
export function checkSigner(signers: TrustedSigners, verificationMethod: string, manifestName: string, now: Date = new Date()): SignerDecision {
  const candidates = signers.keys.filter((candidate) => candidate.ids.includes(verificationMethod));
  if (candidates.length === 0) {
    return { ok: false, reason: 'unknown-key', message: `the signing key ${verificationMethod} is not in the trusted signers file ${signers.file}; add the publisher's key there if you trust it` };
  }
  // The same key may be listed under several entries (publishers, namespaces, dates): any one may accept it.
  const decisions = candidates.map((key) => checkKey(signers, key, manifestName, now));
  return decisions.find((decision) => decision.ok) ?? decisions[0]!;
}

function checkKey(signers: TrustedSigners, key: TrustedKey, manifestName: string, now: Date): SignerDecision {
  const revoked = revocationFor(signers, key);
  if (revoked !== undefined && revoked.revokedAt.getTime() <= now.getTime()) {
    return { ok: false, reason: 'revoked', key, message: `the signing key of ${key.publisher} was revoked on ${revoked.revokedAt.toISOString()} (${revoked.reason}); ask the publisher for a manifest signed with a current key` };
  }
  if (key.notAfter !== undefined && now.getTime() > key.notAfter.getTime()) {
    return { ok: false, reason: 'expired', key, message: `the signing key of ${key.publisher} expired on ${key.notAfter.toISOString()}; ask the publisher to re-sign with a current key, or extend notAfter if the key is still trusted` };
  }
  if (key.notBefore !== undefined && now.getTime() < key.notBefore.getTime()) {
    return { ok: false, reason: 'not-yet-valid', key, message: `the signing key of ${key.publisher} is not valid before ${key.notBefore.toISOString()}` };
  }
  if (!key.namespaces.some((pattern) => namespaceMatches(pattern, manifestName))) {
    return { ok: false, reason: 'out-of-namespace', key, message: `${key.publisher} may sign ${key.namespaces.join(', ')} but the manifest is named '${manifestName}'` };
  }
  return { ok: true, key };
}
