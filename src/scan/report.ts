import { describeLocation } from './finding.js';
import type { RiskScore } from './score.js';
import type { Suppression } from './suppressions.js';
import { severityRank, type Finding, type Severity } from './types.js';

export interface ObservedAction {
  kind: 'file' | 'network' | 'process';
  /** read/write/delete for files, connect/bind/send for network, exec for processes. */
  action: string;
  target: string;
  result: 'ok' | 'denied' | 'error' | 'unknown';
  pid: number;
}

export interface BehaviourSummary {
  traced: 'strace' | 'none';
  sandboxed: boolean;
  sandboxNote: string;
  toolsCalled: { tool: string; arguments: unknown; ok: boolean; error?: string }[];
  actions: ObservedAction[];
}

export interface ScanReport {
  target: { kind: string; label: string; manifestDigest?: string; artifactDigest?: string; packages: { name: string; version?: string }[]; publisherKey?: string };
  scanner: { name: 'bastion-scan'; version: string; rulesDigest: string };
  scannedAt: string;
  analyzers: { name: string; ran: boolean; note?: string }[];
  stats: { files: number; bytes: number; tools: number };
  findings: Finding[];
  suppressed: { finding: Finding; suppression: Suppression }[];
  unusedSuppressions: Suppression[];
  risk: RiskScore;
  behaviour?: BehaviourSummary;
}

const SARIF_LEVEL: Record<Severity, 'error' | 'warning' | 'note' | 'none'> = { critical: 'error', high: 'error', medium: 'warning', low: 'note', info: 'note' };
const SECURITY_SEVERITY: Record<Severity, string> = { critical: '9.5', high: '8.0', medium: '5.5', low: '3.0', info: '0.0' };

export function sortFindings(findings: Finding[]): Finding[] {
  return [...findings].sort((a, b) => severityRank(b.severity) - severityRank(a.severity) || (a.id < b.id ? -1 : 1));
}

export function toJson(report: ScanReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

export function toText(report: ScanReport): string {
  const lines: string[] = [];
  const pointsById = new Map(report.risk.contributions.map((c) => [c.findingId, c.points]));
  lines.push(`Bastion scan of ${report.target.label} (${report.target.kind})`);
  if (report.target.manifestDigest) lines.push(`  manifest ${report.target.manifestDigest}`);
  if (report.target.artifactDigest) lines.push(`  artifact ${report.target.artifactDigest}`);
  lines.push(`  rules ${report.scanner.rulesDigest}, ${report.stats.files} files (${report.stats.bytes} bytes), ${report.stats.tools} tools`);
  lines.push(`  analyzers: ${report.analyzers.map((a) => `${a.name}${a.ran ? '' : ` (skipped: ${a.note ?? ''})`}`).join(', ')}`);
  lines.push('');
  lines.push(`Risk score ${report.risk.score}/100, verdict ${report.risk.verdict.toUpperCase()} (${report.risk.reason})`);
  lines.push('');
  const shown = sortFindings(report.findings).filter((f) => f.severity !== 'info');
  if (shown.length === 0) lines.push('No findings above info.');
  for (const f of shown) {
    lines.push(`[${f.severity.toUpperCase()}] ${f.ruleId} ${f.title}  (+${pointsById.get(f.id) ?? 0} points, confidence ${f.confidence})`);
    lines.push(`  at:       ${describeLocation(f.location)}`);
    lines.push(`  evidence: ${f.evidence}`);
    lines.push(`  why:      ${f.why}`);
    lines.push(`  fix:      ${f.remediation}`);
    lines.push(`  suppress: ${f.suppressionKey}`);
    lines.push('');
  }
  const info = report.findings.filter((f) => f.severity === 'info');
  if (info.length > 0) {
    lines.push(`${info.length} informational finding(s):`);
    for (const f of sortFindings(info).slice(0, 40)) lines.push(`  ${f.ruleId} ${f.title}: ${describeLocation(f.location)} ${f.evidence.slice(0, 100)}`);
    lines.push('');
  }
  if (report.behaviour) {
    const b = report.behaviour;
    lines.push(`Behaviour run: ${b.traced === 'strace' ? 'traced with strace' : 'not traced'}, ${b.sandboxed ? 'sandboxed' : 'NOT sandboxed'} (${b.sandboxNote})`);
    lines.push(`  tools called: ${b.toolsCalled.map((t) => `${t.tool}${t.ok ? '' : ' (error)'}`).join(', ') || '(none)'}`);
    for (const a of b.actions.slice(0, 200)) lines.push(`  ${a.kind} ${a.action} ${a.target} -> ${a.result} (pid ${a.pid})`);
    if (b.actions.length > 200) lines.push(`  … ${b.actions.length - 200} more in the JSON report`);
    lines.push('');
  }
  if (report.suppressed.length > 0) {
    lines.push(`${report.suppressed.length} suppressed finding(s):`);
    for (const s of report.suppressed) lines.push(`  ${s.finding.ruleId} at ${describeLocation(s.finding.location)}: ${s.suppression.reason} (reviewed by ${s.suppression.reviewer})`);
  }
  if (report.unusedSuppressions.length > 0) lines.push(`${report.unusedSuppressions.length} suppression(s) matched nothing (stale): ${report.unusedSuppressions.map((s) => s.key).join(', ')}`);
  return `${lines.join('\n')}\n`;
}

interface SarifRule {
  id: string;
  name: string;
  shortDescription: { text: string };
  fullDescription: { text: string };
  help: { text: string };
  defaultConfiguration: { level: string };
  properties: { 'security-severity': string; tags: string[] };
}

function sarifLocation(f: Finding): Record<string, unknown> {
  if (f.location.file !== undefined) {
    return {
      physicalLocation: {
        artifactLocation: { uri: f.location.file },
        ...(f.location.line !== undefined ? { region: { startLine: f.location.line } } : {}),
      },
      ...(f.location.field ? { logicalLocations: [{ fullyQualifiedName: f.location.field, kind: 'member' }] } : {}),
    };
  }
  const name = [f.location.subject, f.location.field].filter(Boolean).join('/') || 'server';
  return { logicalLocations: [{ fullyQualifiedName: name, name: f.location.field ?? f.location.subject ?? 'server', kind: 'member' }] };
}

/** SARIF 2.1.0: one run, rules in tool.driver.rules, suppressed findings carry a `suppressions` entry. */
export function toSarif(report: ScanReport): Record<string, unknown> {
  const rules: SarifRule[] = [];
  const ruleIndex = new Map<string, number>();
  const all = [...report.findings.map((f) => ({ f, s: undefined as Suppression | undefined })), ...report.suppressed.map((x) => ({ f: x.finding, s: x.suppression }))];
  for (const { f } of all) {
    if (ruleIndex.has(f.ruleId)) continue;
    ruleIndex.set(f.ruleId, rules.length);
    rules.push({
      id: f.ruleId,
      name: f.title.replace(/[^A-Za-z0-9]+/g, ' ').trim().replace(/ (\w)/g, (_, c: string) => c.toUpperCase()).replace(/^\w/, (c) => c.toUpperCase()),
      shortDescription: { text: f.title },
      fullDescription: { text: f.why },
      help: { text: f.remediation },
      defaultConfiguration: { level: SARIF_LEVEL[f.severity] },
      properties: { 'security-severity': SECURITY_SEVERITY[f.severity], tags: ['security', `analyzer:${f.analyzer}`] },
    });
  }
  const results = all.map(({ f, s }) => ({
    ruleId: f.ruleId,
    ruleIndex: ruleIndex.get(f.ruleId) ?? 0,
    level: SARIF_LEVEL[f.severity],
    message: { text: `${f.title}: ${f.evidence}` },
    locations: [sarifLocation(f)],
    partialFingerprints: { 'bastionFindingId/v1': f.id, 'bastionSuppressionKey/v1': f.suppressionKey },
    properties: { severity: f.severity, confidence: f.confidence, analyzer: f.analyzer },
    ...(s ? { suppressions: [{ kind: 'external', status: 'accepted', justification: `${s.reason} (reviewer: ${s.reviewer})` }] } : {}),
  }));
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [{
      tool: { driver: { name: report.scanner.name, version: report.scanner.version, semanticVersion: report.scanner.version, informationUri: 'https://modelcontextprotocol.io', rules } },
      automationDetails: { id: `bastion-scan/${report.target.label}` },
      results,
      properties: { riskScore: report.risk.score, verdict: report.risk.verdict, rulesDigest: report.scanner.rulesDigest, ...(report.target.artifactDigest ? { artifactDigest: report.target.artifactDigest } : {}), ...(report.target.manifestDigest ? { manifestDigest: report.target.manifestDigest } : {}) },
    }],
  };
}

/** Exit code for CI: 0 clean, 1 a finding at or above failOn, errors use 2 (set by the CLI). */
export function exitCodeFor(findings: Finding[], failOn: Severity | 'none'): number {
  if (failOn === 'none') return 0;
  return findings.some((f) => severityRank(f.severity) >= severityRank(failOn)) ? 1 : 0;
}
