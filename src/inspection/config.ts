// Settings of the runtime definition inspection (docs/scan.md, "Runtime inspection"): what the
// gateway does with a tool, prompt, resource or `instructions` text in which the scanner finds
// something, by finding severity, globally (`integrity.definitions`) and per server
// (`servers.NAME.definitions`).

export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';

/**
 * block: not offered, calls refused. quarantine: held until an operator approves it
 * (`bastion quarantine approve`). strip: invisible and control characters removed, then
 * offered. warn: offered as it is; the finding is audited.
 */
export type FindingAction = 'block' | 'quarantine' | 'strip' | 'warn';

export const FINDING_ACTIONS: readonly FindingAction[] = ['block', 'quarantine', 'strip', 'warn'];

export interface DefinitionInspectionConfig {
  /** false turns runtime inspection off (warned at start). */
  enabled: boolean;
  /** The action per finding severity. */
  actions: Record<Severity, FindingAction>;
  /**
   * The action for invisible or control characters in descriptions and other free text
   * (zero-width, bidi, Unicode tags without a readable payload, ANSI, control characters).
   * Hidden characters in a name, and tag characters that spell out text, are judged by
   * severity instead: there they are the attack, not noise.
   */
  hiddenCharacters: FindingAction;
}

export type ServerDefinitionInspection = Partial<Omit<DefinitionInspectionConfig, 'actions'>> & { actions?: Partial<Record<Severity, FindingAction>> };

export const definitionInspectionDefaults: DefinitionInspectionConfig = {
  enabled: true,
  actions: { critical: 'block', high: 'block', medium: 'warn', low: 'warn', info: 'warn' },
  hiddenCharacters: 'strip',
};

/** The effective settings for one server: its own keys over the global ones over the defaults. */
export function inspectionFor(global: Partial<DefinitionInspectionConfig> | undefined, server: ServerDefinitionInspection | undefined): DefinitionInspectionConfig {
  return {
    enabled: server?.enabled ?? global?.enabled ?? definitionInspectionDefaults.enabled,
    actions: { ...definitionInspectionDefaults.actions, ...global?.actions, ...server?.actions },
    hiddenCharacters: server?.hiddenCharacters ?? global?.hiddenCharacters ?? definitionInspectionDefaults.hiddenCharacters,
  };
}

const actionEnum = { enum: FINDING_ACTIONS, description: "block | quarantine | strip | warn" };

const actionsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { critical: actionEnum, high: actionEnum, medium: actionEnum, low: actionEnum, info: actionEnum },
  description: 'the action per finding severity, e.g. { high: block, medium: warn }',
} as const;

/** JSON Schema of `integrity.definitions` and `servers.NAME.definitions` (no defaults: inspectionFor merges). */
export const definitionInspectionSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    enabled: { type: 'boolean', description: 'true (default): every definition and instructions text an upstream sends is scanned before a client sees it' },
    actions: actionsSchema,
    hiddenCharacters: { ...actionEnum, description: 'what to do with invisible and control characters in free text (default strip)' },
  },
} as const;
