/** One finding type shared by every analyzer. */
export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';

export const SEVERITIES: readonly Severity[] = ['info', 'low', 'medium', 'high', 'critical'];

export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

export function isSeverity(value: unknown): value is Severity {
  return typeof value === 'string' && (SEVERITIES as readonly string[]).includes(value);
}

/** Where a finding is: a file and line for code, a tool and field path for metadata. */
export interface FindingLocation {
  file?: string;
  line?: number;
  column?: number;
  /** Tool, prompt or resource the field belongs to, e.g. `tool:get_weather`. */
  subject?: string;
  /** JSON path to the field inside the subject, e.g. `inputSchema.properties.city.description`. */
  field?: string;
}

export type AnalyzerName = 'metadata' | 'code' | 'yara' | 'permissions' | 'behaviour' | 'feed' | 'reputation';

export interface Finding {
  /** Stable identity: rule id plus a digest of the location. Same place, same id across runs. */
  id: string;
  ruleId: string;
  analyzer: AnalyzerName;
  title: string;
  severity: Severity;
  /** 0..1: how sure the rule is that this is what it says. */
  confidence: number;
  location: FindingLocation;
  /** The text that fired the rule (truncated, control characters made visible). */
  evidence: string;
  /** Why the rule fired, for the reviewer. */
  why: string;
  remediation: string;
  /** `<id>@sha256:<hex of evidence>`: what a suppression names. A changed evidence un-suppresses it. */
  suppressionKey: string;
  /** The attack class this finding is evidence of (docs/scan.md, "Attack classes"). */
  attackClass?: AttackClass;
}

/** The unit of coverage: what an attack makes the model do (docs/scan.md). Code and supply-chain findings have their own two. */
export const ATTACK_CLASSES = [
  'hidden-instructions', 'command-execution', 'config-edit', 'exfiltration', 'network-beacon', 'parameter-tampering',
  'tool-redirection', 'dependency-injection', 'cross-server-shadowing', 'preference-manipulation', 'name-overlap',
  'privilege-escalation', 'secrecy', 'output-instructions', 'rug-pull', 'malicious-code', 'known-bad',
] as const;
export type AttackClass = (typeof ATTACK_CLASSES)[number];

export function isAttackClass(value: unknown): value is AttackClass {
  return typeof value === 'string' && (ATTACK_CLASSES as readonly string[]).includes(value);
}

/** A tool as MCP lists it (plus Bastion's declared scopes). */
export interface ToolDefinition {
  name: string;
  title?: string;
  description?: string;
  inputSchema?: unknown;
  outputSchema?: unknown;
  annotations?: Record<string, unknown>;
  scopes?: string[];
}

export interface PromptDefinition {
  name: string;
  title?: string;
  description?: string;
  arguments?: { name: string; description?: string; required?: boolean }[];
}

export interface ResourceDefinition {
  name?: string;
  title?: string;
  uri?: string;
  uriTemplate?: string;
  description?: string;
  mimeType?: string;
}

/** Everything the metadata analyzer reads about a server, whatever the target kind. */
export interface ServerMetadata {
  name: string;
  version?: string;
  instructions?: string;
  tools: ToolDefinition[];
  prompts: PromptDefinition[];
  resources: ResourceDefinition[];
  resourceTemplates: ResourceDefinition[];
  /** Scopes declared for the whole server (manifest `scopes`) plus each tool's. */
  scopes: string[];
}

/** A file of the package under scan. */
export interface SourceFile {
  /** Path relative to the package root, `/`-separated. */
  path: string;
  content: string;
  bytes: number;
}

/** How to start a live server. */
export interface StdioCommand {
  command: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
}
