import type { KeyObject } from 'node:crypto';
import { sha256Digest, canonicalJson } from './digest.js';
import type { ScanReport } from './report.js';
import { signDocument, verifyDocument, SignatureError, type TrustedKey } from './signing.js';
import { severityRank, type Severity } from './types.js';
import type { PublisherVerification } from './publisher.js';

export type CertificationLevel = 0 | 1 | 2 | 3;

/** A signed statement that a certifier found the pentest of this exact manifest and artifact passed. */
export interface PentestAttestation {
  type: 'BastionPentestAttestation';
  version: 1;
  subject: { manifestDigest: string; artifactDigest: string };
  result: 'pass' | 'fail';
  summary: string;
  performedAt: string;
  proof?: unknown;
}

export interface Certification {
  type: 'BastionCertification';
  version: 1;
  subject: { name: string; manifestDigest: string; artifactDigest: string };
  level: CertificationLevel;
  issuedAt: string;
  expiresAt: string;
  evidence: {
    scanner: { version: string; rulesDigest: string };
    static: { score: number; verdict: string; threshold: Severity; findingsAtOrAboveThreshold: number };
    publisher: { verified: boolean; signer?: string; reason: string };
    behaviour: { ran: boolean; clean: boolean; withinDeclaredScopes: boolean; sandboxed: boolean };
    pentest: { certifier: string; attestationDigest: string } | null;
  };
  /** Criteria the next level needs, for the operator. */
  unmet: string[];
  proof?: unknown;
}

export interface CertifyInputs {
  /** A scan of the manifest plus its package (and, for level 2, with the behaviour run). */
  report: ScanReport;
  publisher: PublisherVerification;
  threshold: Severity;
  pentest?: unknown;
  trustedCertifiers: TrustedKey[];
  validityDays: number;
  now?: Date;
}

/** Decides the level from the evidence; every unmet criterion is named. Pure: signing is separate. */
export function decideLevel(inputs: CertifyInputs): { level: CertificationLevel; unmet: string[]; evidence: Certification['evidence'] } {
  const { report, publisher, threshold } = inputs;
  const unmet: string[] = [];
  const blocking = report.findings.filter((f) => severityRank(f.severity) >= severityRank(threshold));
  const staticClean = blocking.length === 0;
  if (!report.target.manifestDigest || !report.target.artifactDigest) unmet.push('level 1: the scan must cover both a manifest and its package (artifact)');
  if (!staticClean) unmet.push(`level 1: ${blocking.length} unsuppressed finding(s) at or above ${threshold} (${[...new Set(blocking.map((f) => f.ruleId))].slice(0, 5).join(', ')})`);
  if (!publisher.verified) unmet.push(`level 1: publisher not verified (${publisher.reason})`);
  const level1 = unmet.length === 0;

  const behaviour = report.behaviour;
  const behaviourFindings = report.findings.filter((f) => f.analyzer === 'behaviour' && severityRank(f.severity) >= severityRank(threshold));
  const scopeFindings = report.findings.filter((f) => f.analyzer === 'permissions' && f.ruleId >= 'BST-P010');
  const behaviourClean = behaviour !== undefined && behaviour.traced === 'strace' && behaviourFindings.length === 0;
  const withinScopes = behaviour !== undefined && scopeFindings.length === 0;
  if (!behaviour) unmet.push('level 2: no behaviour run (scan with --behaviour)');
  else {
    if (!behaviourClean) unmet.push(`level 2: behaviour run not clean (${behaviour.traced === 'strace' ? `${behaviourFindings.length} finding(s)` : 'no syscall trace'})`);
    if (!withinScopes) unmet.push(`level 2: observed behaviour outside declared scopes (${scopeFindings.length} finding(s))`);
  }
  const level2 = level1 && behaviourClean && withinScopes;

  let pentest: Certification['evidence']['pentest'] = null;
  if (inputs.pentest === undefined) unmet.push('level 3: no pentest attestation');
  else {
    try {
      const signer = verifyDocument(inputs.pentest, inputs.trustedCertifiers, 'pentest', 'pentest attestation');
      const p = inputs.pentest as PentestAttestation;
      if (p.type !== 'BastionPentestAttestation') unmet.push('level 3: pentest attestation has the wrong type');
      else if (p.subject?.manifestDigest !== report.target.manifestDigest || p.subject?.artifactDigest !== report.target.artifactDigest) unmet.push('level 3: pentest attestation is for a different manifest or artifact');
      else if (p.result !== 'pass') unmet.push('level 3: pentest result is not pass');
      else pentest = { certifier: signer.id, attestationDigest: sha256Digest(canonicalJson(inputs.pentest)) };
    } catch (error) {
      if (!(error instanceof SignatureError)) throw error;
      unmet.push(`level 3: ${error.message}`);
    }
  }
  const level: CertificationLevel = level2 && pentest ? 3 : level2 ? 2 : level1 ? 1 : 0;
  return {
    level,
    unmet,
    evidence: {
      scanner: { version: report.scanner.version, rulesDigest: report.scanner.rulesDigest },
      static: { score: report.risk.score, verdict: report.risk.verdict, threshold, findingsAtOrAboveThreshold: blocking.length },
      publisher: { verified: publisher.verified, ...(publisher.signer ? { signer: publisher.signer } : {}), reason: publisher.reason },
      behaviour: { ran: behaviour !== undefined, clean: behaviourClean, withinDeclaredScopes: withinScopes, sandboxed: behaviour?.sandboxed ?? false },
      pentest,
    },
  };
}

/** Builds and signs the certification attestation, bound to the manifest and artifact digests. */
export function certify(inputs: CertifyInputs, signingKey: KeyObject, keyId: string): Certification & { proof: unknown } {
  const now = inputs.now ?? new Date();
  const decision = decideLevel(inputs);
  const { manifestDigest, artifactDigest } = inputs.report.target;
  if (!manifestDigest || !artifactDigest) throw new Error('certify: the scan must include a manifest and its package so the certification can be bound to both digests');
  const body: Certification = {
    type: 'BastionCertification',
    version: 1,
    subject: { name: inputs.report.target.label, manifestDigest, artifactDigest },
    level: decision.level,
    issuedAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + inputs.validityDays * 86_400_000).toISOString(),
    evidence: decision.evidence,
    unmet: decision.unmet,
  };
  return signDocument(body as unknown as Record<string, unknown>, signingKey, keyId, now) as unknown as Certification & { proof: unknown };
}

export interface CertificationCheck {
  /** 0 when the attestation is invalid, expired or for another manifest/artifact. */
  level: CertificationLevel;
  valid: boolean;
  reason: string;
  certifier?: string;
}

/** What the gateway calls at boot: a server whose check returns less than its minimum level is refused. */
export function verifyCertification(att: unknown, manifestDigest: string, artifactDigest: string, trustedCertifiers: TrustedKey[], now: Date = new Date()): CertificationCheck {
  let signer: TrustedKey;
  try {
    signer = verifyDocument(att, trustedCertifiers, 'certification', 'certification');
  } catch (error) {
    return { level: 0, valid: false, reason: (error as Error).message };
  }
  const c = att as Partial<Certification>;
  if (c.type !== 'BastionCertification' || c.version !== 1) return { level: 0, valid: false, reason: 'not a BastionCertification v1 document' };
  if (c.subject?.manifestDigest !== manifestDigest) return { level: 0, valid: false, reason: `certification is for manifest ${c.subject?.manifestDigest ?? '(none)'}, not ${manifestDigest}` };
  if (c.subject?.artifactDigest !== artifactDigest) return { level: 0, valid: false, reason: `certification is for artifact ${c.subject?.artifactDigest ?? '(none)'}, not ${artifactDigest}` };
  const expires = Date.parse(c.expiresAt ?? '');
  if (Number.isNaN(expires) || expires < now.getTime()) return { level: 0, valid: false, reason: `certification expired at ${c.expiresAt ?? '(missing)'}; re-run bastion certify` };
  const level = c.level;
  if (level !== 0 && level !== 1 && level !== 2 && level !== 3) return { level: 0, valid: false, reason: 'certification level is not 0..3' };
  return { level, valid: true, reason: `level ${level} certified by ${signer.id} until ${c.expiresAt}`, certifier: signer.id };
}
