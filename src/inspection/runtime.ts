// The gateway side of definition inspection: applies each verdict (block, quarantine, strip,
// warn) to the definitions the hash lock let through, keeps quarantines in the store, audits every
// finding, and says why a definition is refused in words that never quote the upstream.
import type { QuarantineStore } from '../integrity/quarantine.js';
import type { DefinitionInspectionConfig } from './config.js';
import { worstFinding, type Definition, type DefinitionFinding, type DefinitionScanner, type DefinitionVerdict, type InspectedKind } from './definitions.js';

const MAX_REPORTED = 10_000;

export interface FindingEvent {
  server: string;
  kind: InspectedKind | 'instructions';
  /** Tool or prompt name, resource URI, or `instructions`. */
  name: string;
  digest: string;
  action: DefinitionVerdict['action'];
  findings: DefinitionFinding[];
  quarantineId?: string;
}

export interface RuntimeInspectionOptions {
  scanner: DefinitionScanner;
  /** The effective settings for one server. */
  settingsFor: (server: string) => DefinitionInspectionConfig;
  store?: QuarantineStore;
  /** Called once per definition and verdict with findings (the audit log records it). */
  onFindings?: (event: FindingEvent) => void;
}

export interface InspectionResult {
  published: Definition[];
  /** Name (or URI) -> why it is refused, safe to send to a client. */
  refused: Map<string, string>;
}

const nameOf = (kind: InspectedKind, item: Definition): string => String((kind === 'resources' ? item['uri'] : kind === 'resourceTemplates' ? item['name'] ?? item['uriTemplate'] : item['name']) ?? '');

/** The reason a client may read: the severity and rule of the worst finding, and the quarantine id. */
function refusal(verdict: DefinitionVerdict, quarantineId?: string): string {
  const worst = worstFinding(verdict.findings);
  const what = worst === undefined ? 'findings' : `a ${worst.severity} finding (${worst.ruleId})`;
  return quarantineId === undefined
    ? `blocked by definition inspection: ${what} in its definition ${verdict.digest.slice(0, 19)}…`
    : `held by definition inspection: ${what} (quarantine ${quarantineId})`;
}

export function createRuntimeInspection(options: RuntimeInspectionOptions) {
  const { scanner, store } = options;
  const reported = new Set<string>();
  const report = (event: FindingEvent): void => {
    // A stable list is inspected once per session and re-list; each verdict is audited once per process.
    const key = `${event.server}\u0000${event.kind}\u0000${event.name}\u0000${event.digest}\u0000${event.action}\u0000${event.quarantineId ?? ''}`;
    if (event.findings.length === 0 || reported.has(key)) return;
    // A server that changes its text on every list must not grow this set without bound.
    if (reported.size >= MAX_REPORTED) reported.clear();
    reported.add(key);
    options.onFindings?.(event);
  };

  /** Applies a verdict; returns the definition to offer, or the reason to refuse it. */
  const apply = (server: string, kind: InspectedKind | 'instructions', name: string, verdict: DefinitionVerdict): { offer: Definition } | { refuse: string } => {
    if (verdict.action === 'block') {
      report({ server, kind, name, digest: verdict.digest, action: verdict.action, findings: verdict.findings });
      return { refuse: refusal(verdict) };
    }
    if (verdict.action === 'quarantine') {
      const findings = verdict.findings.map((finding) => ({ ruleId: finding.ruleId, severity: finding.severity, field: finding.field }));
      const record = store === undefined ? undefined : store.find(server, kind, name, verdict.digest) ?? store.hold({ server, kind, name, cause: 'findings', newDigest: verdict.digest, newDefinition: verdict.item, diff: [], findings });
      report({ server, kind, name, digest: verdict.digest, action: verdict.action, findings: verdict.findings, ...(record === undefined ? {} : { quarantineId: record.id }) });
      if (record?.status !== 'approved') return { refuse: record?.status === 'rejected' ? `an operator rejected this definition (quarantine ${record.id})` : refusal(verdict, record?.id ?? 'not persisted') };
      return { offer: verdict.item };
    }
    report({ server, kind, name, digest: verdict.digest, action: verdict.action, findings: verdict.findings });
    return { offer: verdict.item };
  };

  return {
    /** Inspects the definitions the hash lock published; what is refused is hidden and denied when called. */
    inspect(server: string, kind: InspectedKind, items: readonly Definition[]): InspectionResult {
      const settings = options.settingsFor(server);
      if (!settings.enabled) return { published: [...items], refused: new Map() };
      const published: Definition[] = [];
      const refused = new Map<string, string>();
      for (const item of items) {
        const name = nameOf(kind, item);
        const outcome = apply(server, kind, name, scanner.verdict(kind, item, settings));
        if ('offer' in outcome) published.push(outcome.offer);
        else refused.set(name, outcome.refuse);
      }
      return { published, refused };
    },
    /** The instructions text to pass on (possibly stripped), or undefined to withhold it. */
    instructions(server: string, text: string): string | undefined {
      const settings = options.settingsFor(server);
      if (!settings.enabled) return text;
      const outcome = apply(server, 'instructions', 'instructions', scanner.instructionsVerdict(text, settings));
      return 'offer' in outcome ? String(outcome.offer['instructions'] ?? '') : undefined;
    },
  };
}

export type RuntimeInspection = ReturnType<typeof createRuntimeInspection>;
