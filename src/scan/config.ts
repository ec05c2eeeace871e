import type { Severity } from './types.js';

/** Scanner settings the lead can put under `scan:` in bastion.yaml. */
export interface ScanConfig {
  /** Rule directory; defaults to the data/scan shipped with Bastion. */
  dataDir?: string;
  /** Local threat feed (written by `bastion feed import`). The gateway refuses servers that match it at boot. */
  feedPath?: string;
  /** Signed reputation file and the keys trusted to sign it. */
  reputationPath?: string;
  reputationKeysPath?: string;
  /** Reviewed suppressions (YAML/JSON). */
  suppressionsPath?: string;
  /** `bastion scan` exits 1 when a finding is at or above this severity. */
  failOn: Severity | 'none';
  certification: CertificationConfig;
}

export interface CertificationConfig {
  /** Static analysis is "clean" when no unsuppressed finding is at or above this severity. */
  threshold: Severity;
  /** Keys whose certifications and pentest attestations are accepted ({ keys: [{ id, publicKey, purposes? }] }). */
  trustedCertifiersPath?: string;
  /** Trusted manifest signers for publisher verification (same file format; multibase z6Mk… keys accepted). */
  trustedSignersPath?: string;
  /** How long an issued certification is valid. */
  validityDays: number;
}

/** Per server, next to `manifest:` in the servers map. */
export interface ServerCertificationConfig {
  /** Path to the server's certification attestation (written by `bastion certify`). */
  certification?: string;
  /** The gateway refuses to start the server below this level (0 = no requirement). */
  minCertificationLevel?: 0 | 1 | 2 | 3;
}

export const DEFAULT_SCAN_CONFIG: ScanConfig = {
  failOn: 'high',
  certification: { threshold: 'medium', validityDays: 90 },
};

const severityEnum = ['info', 'low', 'medium', 'high', 'critical'];

/** JSON Schema (draft 2020-12) fragments for the config loader. */
export const scanConfigSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    dataDir: { type: 'string', description: 'Directory with the detection rules (default: data/scan shipped with Bastion).' },
    feedPath: { type: 'string', description: 'Local threat feed file; servers matching it are refused at boot.' },
    reputationPath: { type: 'string', description: 'Signed publisher reputation file.' },
    reputationKeysPath: { type: 'string', description: 'Keys trusted to sign the reputation file.' },
    suppressionsPath: { type: 'string', description: 'Reviewed suppressions file.' },
    failOn: { enum: [...severityEnum, 'none'], default: 'high' },
    certification: {
      type: 'object',
      additionalProperties: false,
      properties: {
        threshold: { enum: severityEnum, default: 'medium' },
        trustedCertifiersPath: { type: 'string' },
        trustedSignersPath: { type: 'string' },
        validityDays: { type: 'integer', minimum: 1, maximum: 730, default: 90 },
      },
    },
  },
} as const;

export const serverCertificationSchema = {
  certification: { type: 'string', description: 'Certification attestation written by `bastion certify`.' },
  minCertificationLevel: { type: 'integer', minimum: 0, maximum: 3, default: 0, description: 'Refuse to start the server below this certification level.' },
} as const;
