// Verifying a manifest end to end: schema, signature, and whether the signer is trusted for it.
import { digestJson, type DigestAlgorithm } from './digest.js';
import { loadManifest, parseManifest, unsignedManifest, type LoadedManifest, type Manifest } from './manifest.js';
import { readProof, verifyDocument, type JsonObject } from './proof.js';
import { checkSigner, type SignerRefusal, type TrustedKey, type TrustedSigners } from './signers.js';
import { IntegrityFileError } from './source.js';

export type VerifyRefusal = 'invalid-manifest' | 'unsigned' | 'malformed-proof' | 'unsupported-cryptosuite' | 'wrong-key-type' | 'bad-signature' | 'future-signature' | SignerRefusal;

export type ManifestVerification =
  | { ok: true; manifest: Manifest; signer: TrustedKey; manifestDigest: string }
  | { ok: false; reason: VerifyRefusal; message: string; file: string };

/** Signatures made more than this far in the future are refused (clock skew allowance). */
const MAX_FUTURE_SKEW_MS = 5 * 60_000;

export interface VerifyOptions {
  now?: Date;
  digestAlgorithm?: DigestAlgorithm;
}

export function manifestDigest(manifest: Manifest, algorithm?: DigestAlgorithm): string {
  return digestJson(unsignedManifest(manifest), algorithm);
}

export function verifyLoadedManifest(loaded: LoadedManifest, signers: TrustedSigners, options: VerifyOptions = {}): ManifestVerification {
  const file = loaded.source.file;
  const document = loaded.manifest as unknown as JsonObject;
  const read = readProof(document);
  if (!read.ok) return { ok: false, reason: read.reason, message: read.message, file };
  const now = options.now ?? new Date();
  const signer = checkSigner(signers, read.proof.verificationMethod, loaded.manifest.name, now);
  if (!signer.ok) return { ok: false, reason: signer.reason, message: signer.message, file };
  const checked = verifyDocument(document, signer.key.publicKey);
  if (!checked.ok) return { ok: false, reason: checked.reason, message: checked.message, file };
  if (read.proof.created !== undefined && Date.parse(read.proof.created) > now.getTime() + MAX_FUTURE_SKEW_MS) {
    return { ok: false, reason: 'future-signature', message: `the proof claims to be created at ${read.proof.created}, in the future; check the signer's clock`, file };
  }
  return { ok: true, manifest: loaded.manifest, signer: signer.key, manifestDigest: manifestDigest(loaded.manifest, options.digestAlgorithm) };
}

function attempt(load: () => LoadedManifest, file: string, signers: TrustedSigners, options: VerifyOptions): ManifestVerification {
  let loaded: LoadedManifest;
  try {
    loaded = load();
  } catch (error) {
    if (error instanceof IntegrityFileError) return { ok: false, reason: 'invalid-manifest', message: error.message, file };
    throw error;
  }
  return verifyLoadedManifest(loaded, signers, options);
}

/** Fails closed: any problem (unreadable, invalid, unsigned, untrusted, tampered) is a refusal with a reason. */
export const verifyManifestFile = (file: string, signers: TrustedSigners, options: VerifyOptions = {}): ManifestVerification =>
  attempt(() => loadManifest(file), file, signers, options);

export const verifyManifestText = (text: string, file: string, signers: TrustedSigners, options: VerifyOptions = {}): ManifestVerification =>
  attempt(() => parseManifest(text, file), file, signers, options);
