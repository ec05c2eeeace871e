import { createHash } from 'node:crypto';
import type { AnalyzerName, AttackClass, Finding, FindingLocation, Severity } from './types.js';

const MAX_EVIDENCE = 240;

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Makes invisible and control characters visible so a reviewer sees what fired. */
export function visibleEvidence(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    const invisible = cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x202a && cp <= 0x202e) ||
      (cp >= 0x2060 && cp <= 0x2069) || cp === 0xfeff || cp === 0xad || (cp >= 0xe0000 && cp <= 0xe007f);
    out += invisible && ch !== '\n' ? `\\u{${cp.toString(16)}}` : ch === '\n' ? '\\n' : ch;
    if (out.length > MAX_EVIDENCE) return `${out.slice(0, MAX_EVIDENCE)}…`;
  }
  return out;
}

export function locationKey(location: FindingLocation): string {
  return [location.file ?? '', location.line ?? '', location.subject ?? '', location.field ?? ''].join('|');
}

export interface FindingInput {
  ruleId: string;
  analyzer: AnalyzerName;
  title: string;
  severity: Severity;
  confidence: number;
  location: FindingLocation;
  evidence: string;
  why: string;
  remediation: string;
  /** Extra text that keeps two findings of one rule at one location apart (e.g. the matched host). */
  discriminator?: string;
  /** Defaults by analyzer: metadata findings to hidden-instructions, code/yara/behaviour/permissions to malicious-code, feed/reputation to known-bad. */
  attackClass?: AttackClass;
}

function defaultAttackClass(analyzer: AnalyzerName): AttackClass {
  if (analyzer === 'metadata') return 'hidden-instructions';
  if (analyzer === 'feed' || analyzer === 'reputation') return 'known-bad';
  return 'malicious-code';
}

export function makeFinding(input: FindingInput): Finding {
  const evidence = visibleEvidence(input.evidence);
  const id = `${input.ruleId}:${sha256Hex(`${locationKey(input.location)}|${input.discriminator ?? ''}`).slice(0, 12)}`;
  return {
    id,
    ruleId: input.ruleId,
    analyzer: input.analyzer,
    title: input.title,
    severity: input.severity,
    confidence: Math.max(0, Math.min(1, input.confidence)),
    location: input.location,
    evidence,
    why: input.why,
    remediation: input.remediation,
    suppressionKey: `${id}@sha256:${sha256Hex(evidence)}`,
    attackClass: input.attackClass ?? defaultAttackClass(input.analyzer),
  };
}

export function describeLocation(location: FindingLocation): string {
  if (location.file !== undefined) {
    return location.line !== undefined ? `${location.file}:${location.line}` : location.file;
  }
  if (location.subject !== undefined) return location.field !== undefined ? `${location.subject} ${location.field}` : location.subject;
  return '(server)';
}
