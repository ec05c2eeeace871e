import { createHash, createPublicKey, sign as cryptoSign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from './digest.js';
import type { TrustedKey } from './signing.js';

/**
 * Verifies a manifest's W3C Data Integrity proof of cryptosuite eddsa-jcs-2022 (the form the
 * integrity module signs manifests with) against a list of trusted signers. Kept here, small, so
 * certification does not depend on the integrity module's API; see docs/scan.md.
 */
export interface PublisherVerification {
  verified: boolean;
  signer?: string;
  reason: string;
}

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

export function base58btcDecode(text: string): Buffer {
  let n = 0n;
  for (const ch of text) {
    const v = B58.indexOf(ch);
    if (v < 0) throw new Error(`invalid base58 character "${ch}"`);
    n = n * 58n + BigInt(v);
  }
  const bytes: number[] = [];
  while (n > 0n) { bytes.unshift(Number(n % 256n)); n /= 256n; }
  for (const ch of text) { if (ch !== '1') break; bytes.unshift(0); }
  return Buffer.from(bytes);
}

export function base58btcEncode(bytes: Uint8Array): string {
  let n = 0n;
  for (const b of bytes) n = n * 256n + BigInt(b);
  let out = '';
  while (n > 0n) { out = B58[Number(n % 58n)] + out; n /= 58n; }
  for (const b of bytes) { if (b !== 0) break; out = `1${out}`; }
  return out;
}

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** A key as trusted-signer lists write it: PEM/DER SPKI, or multibase `z6Mk…` (ed25519-pub multicodec). */
export function ed25519KeyFrom(text: string): KeyObject {
  const t = text.trim();
  if (t.startsWith('-----BEGIN')) return createPublicKey(t);
  const multibase = t.startsWith('did:key:') ? t.slice('did:key:'.length).split('#')[0] ?? '' : t;
  if (multibase.startsWith('z')) {
    const raw = base58btcDecode(multibase.slice(1));
    if (raw[0] !== 0xed || raw[1] !== 0x01 || raw.length !== 34) throw new Error('multibase key is not an ed25519-pub multicodec key');
    return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw.subarray(2)]), format: 'der', type: 'spki' });
  }
  return createPublicKey({ key: Buffer.from(t, 'base64'), format: 'der', type: 'spki' });
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function matchesSigner(verificationMethod: string, key: TrustedKey): boolean {
  const vmKey = verificationMethod.startsWith('did:key:') ? verificationMethod.slice(8).split('#')[0] : undefined;
  return key.id === verificationMethod || key.id === verificationMethod.split('#')[0] || (vmKey !== undefined && key.publicKey.trim() === vmKey);
}

export function verifyManifestPublisher(doc: unknown, trustedSigners: TrustedKey[]): PublisherVerification {
  if (typeof doc !== 'object' || doc === null) return { verified: false, reason: 'manifest is not an object' };
  const { proof, ...unsecured } = doc as Record<string, unknown>;
  const proofs = Array.isArray(proof) ? proof : proof ? [proof] : [];
  if (proofs.length === 0) return { verified: false, reason: 'manifest has no proof (unsigned)' };
  const reasons: string[] = [];
  for (const p of proofs) {
    const pr = p as Record<string, unknown>;
    if (pr.type !== 'DataIntegrityProof' || pr.cryptosuite !== 'eddsa-jcs-2022' || typeof pr.proofValue !== 'string' || typeof pr.verificationMethod !== 'string') {
      reasons.push('proof is not a DataIntegrityProof with cryptosuite eddsa-jcs-2022');
      continue;
    }
    const signer = trustedSigners.find((k) => matchesSigner(pr.verificationMethod as string, k));
    if (!signer) { reasons.push(`signer ${pr.verificationMethod} is not a trusted signer`); continue; }
    const { proofValue, ...proofConfig } = pr;
    if (unsecured['@context'] !== undefined) proofConfig['@context'] = unsecured['@context'];
    try {
      const data = Buffer.concat([sha256(canonicalJson(proofConfig)), sha256(canonicalJson(unsecured))]);
      const sig = (proofValue as string).startsWith('z') ? base58btcDecode((proofValue as string).slice(1)) : Buffer.alloc(0);
      if (verify(null, data, ed25519KeyFrom(signer.publicKey), sig)) return { verified: true, signer: signer.id, reason: `signed by trusted signer ${signer.id}` };
      reasons.push(`signature by ${signer.id} does not verify`);
    } catch (error) {
      reasons.push(`cannot verify proof by ${signer.id}: ${(error as Error).message}`);
    }
  }
  return { verified: false, reason: reasons.join('; ') };
}

/** Signs a manifest with eddsa-jcs-2022 (used by tests and by `bastion certify` fixtures; the integrity module owns production signing). */
export function signManifestEddsaJcs(doc: Record<string, unknown>, privateKey: KeyObject, verificationMethod: string, created = new Date()): Record<string, unknown> {
  const { proof: _old, ...unsecured } = doc;
  const proofConfig: Record<string, unknown> = { type: 'DataIntegrityProof', cryptosuite: 'eddsa-jcs-2022', created: created.toISOString().replace(/\.\d{3}Z$/, 'Z'), verificationMethod, proofPurpose: 'assertionMethod' };
  const configForHash = unsecured['@context'] !== undefined ? { ...proofConfig, '@context': unsecured['@context'] } : proofConfig;
  const data = Buffer.concat([sha256(canonicalJson(configForHash)), sha256(canonicalJson(unsecured))]);
  const signature = cryptoSign(null, data, privateKey);
  return { ...unsecured, proof: { ...proofConfig, proofValue: `z${base58btcEncode(signature)}` } };
}

/** The `z6Mk…` multibase form of an Ed25519 public key. */
export function ed25519Multibase(publicKey: KeyObject): string {
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return `z${base58btcEncode(Buffer.concat([Buffer.from([0xed, 0x01]), der.subarray(der.length - 32)]))}`;
}
