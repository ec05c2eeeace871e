// The scanner's word before anything is pinned or signed: `bastion lock`, `manifest from-server`
// and `sign` refuse definitions with high or critical findings unless the operator accepts them
// (`--accept-findings`, recorded in the lock entry), so poisoned text is never approved silently.
import { loadRules, severityRank } from '../scan/index.js';
import type { AcceptedFinding, DefinitionKind } from '../integrity/hashlock.js';
import { definitionInspectionDefaults } from './config.js';
import { DefinitionScanner, type Definition } from './definitions.js';

export interface DefinitionsToPin {
  tools?: readonly Definition[];
  prompts?: readonly Definition[];
  resourceTemplates?: readonly Definition[];
  instructions?: string;
}

let shared: DefinitionScanner | undefined;
const scanner = (): DefinitionScanner => (shared ??= new DefinitionScanner(loadRules()));

/** Every finding of high severity or above, per definition, as a lock entry records it. */
export function findingsBeforePinning(definitions: DefinitionsToPin, minimum: 'high' | 'critical' = 'high'): AcceptedFinding[] {
  const out: AcceptedFinding[] = [];
  const floor = severityRank(minimum);
  const kinds: DefinitionKind[] = ['tools', 'prompts', 'resourceTemplates'];
  for (const kind of kinds) {
    for (const item of definitions[kind] ?? []) {
      for (const finding of scanner().findings(kind, item, definitionInspectionDefaults)) {
        if (severityRank(finding.severity) >= floor) out.push({ kind, name: String(item['name'] ?? ''), ruleId: finding.ruleId, severity: finding.severity, field: finding.field });
      }
    }
  }
  if (definitions.instructions !== undefined && definitions.instructions !== '') {
    for (const finding of scanner().instructionsVerdict(definitions.instructions, definitionInspectionDefaults).findings) {
      if (severityRank(finding.severity) >= floor) out.push({ kind: 'instructions', name: 'instructions', ruleId: finding.ruleId, severity: finding.severity, field: finding.field });
    }
  }
  return out;
}

/** One line per finding, for the refusal message. */
export function describeFindings(findings: readonly AcceptedFinding[]): string {
  return findings.map((finding) => `  ${finding.severity} ${finding.ruleId}: ${finding.kind} '${finding.name}' ${finding.field}`).join('\n');
}
