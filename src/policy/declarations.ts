// What each server's tools say they need. Only the subset the policy uses is read here
// (server name; each tool's and prompt's name and scopes); signature checking of the full
// manifest is the integrity module's job, which can feed its verified result in instead.
import type { PolicyProblem } from './errors.js';
import { isRecord, readSource, type SourceDocument } from './source.js';
import { compileDeclared } from './template.js';

export interface DeclaredItem {
  /** Declared scope strings, possibly binding arguments (`read:filesystem:${path}`). */
  readonly scopes: readonly string[];
  /** Where the declaration came from, for explanations ("manifest.yaml:12"). */
  readonly source?: string;
}

export interface ServerDeclarations {
  /** Tool name (as the server knows it) -> declaration. A tool absent here is undeclared and denied. */
  readonly tools: Readonly<Record<string, DeclaredItem>>;
  /** Prompt name -> extra scopes beyond exec:prompts (optional). */
  readonly prompts: Readonly<Record<string, DeclaredItem>>;
}

/** Server name -> its declarations. */
export type ToolDeclarations = Readonly<Record<string, ServerDeclarations>>;

export type ManifestResult = { ok: true; server: string; declarations: ServerDeclarations; warnings: PolicyProblem[] } | { ok: false; problems: PolicyProblem[] };

/** Reads the policy-relevant subset of one server manifest (YAML or JSON). */
export function loadManifestFile(file: string): ManifestResult {
  const source = readSource(file);
  if (!source.ok) return source;
  return manifestFromDocument(source.doc);
}

export function manifestFromDocument(doc: SourceDocument): ManifestResult {
  const problems: PolicyProblem[] = [];
  const warnings: PolicyProblem[] = [];
  const root = doc.value;
  if (!isRecord(root)) return { ok: false, problems: [doc.problem([], 'a manifest must be a mapping with name and tools', 'start the file with name: SERVER')] };
  const name = root['name'];
  if (typeof name !== 'string' || name.length === 0) problems.push(doc.problem(['name'], 'missing or empty server name', 'add name: SERVER (the server key used in the gateway config)'));
  const tools = readItems(doc, root, 'tools', problems, warnings);
  const prompts = readItems(doc, root, 'prompts', problems, warnings);
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, server: name as string, declarations: { tools, prompts }, warnings };
}

function readItems(doc: SourceDocument, root: Record<string, unknown>, field: 'tools' | 'prompts', problems: PolicyProblem[], warnings: PolicyProblem[]): Record<string, DeclaredItem> {
  const items: Record<string, DeclaredItem> = {};
  const list = root[field];
  if (list === undefined) return items;
  if (!Array.isArray(list)) {
    problems.push(doc.problem([field], `${field} must be a list`, `write ${field}: [{ name: ..., scopes: [...] }]`));
    return items;
  }
  list.forEach((item: unknown, index) => {
    const at = [field, index];
    if (!isRecord(item) || typeof item['name'] !== 'string' || item['name'].length === 0) {
      problems.push(doc.problem(at, `each entry of ${field} needs a name`, 'add name: TOOL'));
      return;
    }
    const itemName = item['name'];
    if (Object.hasOwn(items, itemName)) {
      problems.push(doc.problem([...at, 'name'], `${field} '${itemName}' is declared twice`, 'keep one entry per name'));
      return;
    }
    const scopes = item['scopes'];
    if (scopes === undefined) {
      if (field === 'tools') warnings.push(doc.problem(at, `tool '${itemName}' declares no scopes, so every call to it is denied`, 'add scopes: [] if it needs nothing, or list what it touches'));
      return;
    }
    if (!Array.isArray(scopes) || !scopes.every((scope): scope is string => typeof scope === 'string')) {
      problems.push(doc.problem([...at, 'scopes'], 'scopes must be a list of strings', 'write scopes: ["read:filesystem:${path}"]'));
      return;
    }
    let valid = true;
    scopes.forEach((scope, scopeIndex) => {
      const compiled = compileDeclared(scope);
      if (!compiled.ok) {
        valid = false;
        problems.push(doc.problem([...at, 'scopes', scopeIndex], compiled.error, 'see docs/policy.md for the scope grammar'));
      }
    });
    const position = doc.at(at);
    if (valid) items[itemName] = { scopes, source: `${doc.file}${position.line === undefined ? '' : `:${position.line}`}` };
  });
  return items;
}

/** The shape of a server entry in the gateway config that may carry inline declarations. */
export interface InlineServerConfig {
  tools?: Readonly<Record<string, { scopes?: readonly string[] }>>;
}

/** Declarations written inline in the gateway config (`servers.NAME.tools.TOOL.scopes`). */
export function declarationsFromConfig(servers: Readonly<Record<string, InlineServerConfig>>, source = 'config'): ToolDeclarations {
  const result: Record<string, ServerDeclarations> = {};
  for (const [server, config] of Object.entries(servers)) {
    const tools: Record<string, DeclaredItem> = {};
    for (const [tool, entry] of Object.entries(config.tools ?? {})) {
      if (entry.scopes !== undefined) tools[tool] = { scopes: [...entry.scopes], source: `${source}: servers.${server}.tools.${tool}.scopes` };
    }
    if (Object.keys(tools).length > 0) result[server] = { tools, prompts: {} };
  }
  return result;
}

/**
 * Merges declaration sets; later sets win per tool. Pass manifests first and the operator's
 * inline config last, so the operator can narrow what a publisher declared.
 */
export function mergeDeclarations(...sets: readonly ToolDeclarations[]): ToolDeclarations {
  const result: Record<string, { tools: Record<string, DeclaredItem>; prompts: Record<string, DeclaredItem> }> = {};
  for (const set of sets) {
    for (const [server, declarations] of Object.entries(set)) {
      const target = (result[server] ??= { tools: {}, prompts: {} });
      Object.assign(target.tools, declarations.tools);
      Object.assign(target.prompts, declarations.prompts);
    }
  }
  return result;
}
