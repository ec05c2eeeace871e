// Policy files: roles (named, reusable sets of grants, which may extend other roles) and
// agents (bound by the agent id the authenticator assigns) holding roles and grants. Several
// files form one policy set; a role or agent defined twice is an error, not a silent merge.
import type { PolicyProblem } from './errors.js';
import { parseScope, type Scope } from './scope.js';
import { isRecord, readSource, type SourceDocument } from './source.js';
import { collectToolGroups, expandGroups, type ToolGroup } from './tool-groups.js';

export interface Grant {
  readonly scope: Scope;
  /** Who holds it directly: "agent alice" or "role reader". */
  readonly via: string;
  /** file:line of the grant. */
  readonly source: string;
  /** A call this grant allows waits for an operator's decision (src/approval), denied at the deadline. */
  readonly approval?: { readonly timeoutSeconds: number };
}

/** Fields of a grant written as a mapping: `{ scope: "exec:tools:fs.write_file", approval: required }`. */
const GRANT_FIELDS = ['scope', 'approval', 'approvalTimeoutSeconds'];
export const DEFAULT_APPROVAL_TIMEOUT_SECONDS = 120;
const MAX_APPROVAL_TIMEOUT_SECONDS = 86_400;

export interface RoleDefinition {
  readonly name: string;
  readonly extends: readonly string[];
  readonly grants: readonly Grant[];
  readonly source: string;
}

export interface AgentDefinition {
  readonly id: string;
  readonly roles: readonly string[];
  readonly grants: readonly Grant[];
  readonly source: string;
}

export interface PolicySet {
  readonly roles: ReadonlyMap<string, RoleDefinition>;
  readonly agents: ReadonlyMap<string, AgentDefinition>;
  readonly files: readonly string[];
}

export type PolicySetResult = { ok: true; policy: PolicySet; warnings: PolicyProblem[] } | { ok: false; problems: PolicyProblem[]; warnings: PolicyProblem[] };

const TOP_LEVEL = ['version', 'roles', 'agents', 'toolGroups', 'description'];
const ROLE_FIELDS = ['description', 'extends', 'grants'];
const AGENT_FIELDS = ['description', 'roles', 'grants'];

interface Collected {
  roles: Map<string, RoleDefinition>;
  agents: Map<string, AgentDefinition>;
  problems: PolicyProblem[];
  warnings: PolicyProblem[];
  /** Where each role reference was written, to report unknown roles at the reference. */
  references: Array<{ role: string; problem: (message: string, fix: string) => PolicyProblem }>;
  /** Named tool sets (toolGroups:), expanded into the grants that name them with @. */
  groups: Map<string, ToolGroup>;
}

export function loadPolicyFiles(files: readonly string[]): PolicySetResult {
  const collected: Collected = { roles: new Map(), agents: new Map(), problems: [], warnings: [], references: [], groups: new Map() };
  for (const file of files) {
    const source = readSource(file);
    if (!source.ok) collected.problems.push(...source.problems);
    else collectDocument(source.doc, collected);
  }
  return finish(collected, files);
}

/** For callers that already parsed documents (tests, the CLI when a file's kind was sniffed). */
export function policyFromDocuments(docs: readonly SourceDocument[]): PolicySetResult {
  const collected: Collected = { roles: new Map(), agents: new Map(), problems: [], warnings: [], references: [], groups: new Map() };
  for (const doc of docs) collectDocument(doc, collected);
  return finish(collected, docs.map((doc) => doc.file));
}

function finish(collected: Collected, files: readonly string[]): PolicySetResult {
  for (const reference of collected.references) {
    if (!collected.roles.has(reference.role)) {
      const known = [...collected.roles.keys()];
      collected.problems.push(reference.problem(`unknown role '${reference.role}'`, known.length === 0 ? 'define it under roles:' : `define it under roles: or use one of ${known.join(', ')}`));
    }
  }
  expandAllGroups(collected);
  if (collected.problems.length === 0) collected.problems.push(...cycleProblems(collected.roles));
  if (collected.problems.length > 0) return { ok: false, problems: collected.problems, warnings: collected.warnings };
  return { ok: true, policy: { roles: collected.roles, agents: collected.agents, files }, warnings: collected.warnings };
}

function collectDocument(doc: SourceDocument, into: Collected): void {
  const root = doc.value;
  if (!isRecord(root)) {
    into.problems.push(doc.problem([], 'a policy file must be a mapping with roles: and/or agents:', 'see docs/policy.md'));
    return;
  }
  for (const key of Object.keys(root)) {
    if (!TOP_LEVEL.includes(key)) into.problems.push(doc.problem([key], `unknown field '${key}'`, `allowed fields: ${TOP_LEVEL.join(', ')}`, true));
  }
  collectToolGroups(doc, root, into.groups, into.problems);
  if (root['version'] !== undefined && root['version'] !== 1) into.problems.push(doc.problem(['version'], `unsupported version ${JSON.stringify(root['version'])}`, 'write version: 1'));
  forEachEntry(doc, root, 'roles', into, (name, entry, at) => {
    checkFields(doc, entry, at, ROLE_FIELDS, into);
    const parents = stringList(doc, entry, [...at, 'extends'], into);
    parents.forEach((role, index) => into.references.push({ role, problem: (message, fix) => doc.problem([...at, 'extends', index], message, fix) }));
    const definition: RoleDefinition = { name, extends: parents, grants: grants(doc, entry, at, `role ${name}`, into), source: where(doc, at) };
    if (into.roles.has(name)) into.problems.push(doc.problem(at, `role '${name}' is already defined at ${into.roles.get(name)?.source ?? '?'}`, 'rename one of them or merge them', true));
    else into.roles.set(name, definition);
  });
  forEachEntry(doc, root, 'agents', into, (id, entry, at) => {
    checkFields(doc, entry, at, AGENT_FIELDS, into);
    const roles = stringList(doc, entry, [...at, 'roles'], into);
    roles.forEach((role, index) => into.references.push({ role, problem: (message, fix) => doc.problem([...at, 'roles', index], message, fix) }));
    const definition: AgentDefinition = { id, roles, grants: grants(doc, entry, at, `agent ${id}`, into), source: where(doc, at) };
    if (into.agents.has(id)) into.problems.push(doc.problem(at, `agent '${id}' is already defined at ${into.agents.get(id)?.source ?? '?'}`, 'keep one definition per agent; share grants through roles', true));
    else into.agents.set(id, definition);
  });
}

/** Replaces every @group in exec:tools grants by its members, once all files are read. */
function expandAllGroups(into: Collected): void {
  for (const [name, role] of into.roles) into.roles.set(name, { ...role, grants: role.grants.map((grant) => expandGroups(grant, into.groups, into.problems)) });
  for (const [id, agent] of into.agents) into.agents.set(id, { ...agent, grants: agent.grants.map((grant) => expandGroups(grant, into.groups, into.problems)) });
}

function forEachEntry(doc: SourceDocument, root: Record<string, unknown>, field: string, into: Collected, visit: (name: string, entry: Record<string, unknown>, at: string[]) => void): void {
  const section = root[field];
  if (section === undefined || section === null) return;
  if (!isRecord(section)) {
    into.problems.push(doc.problem([field], `${field} must be a mapping of names to definitions`, `write ${field}: { NAME: { grants: [...] } }`));
    return;
  }
  for (const [name, entry] of Object.entries(section)) {
    const at = [field, name];
    if (name.trim().length === 0 || name !== name.trim()) {
      into.problems.push(doc.problem(at, `invalid name '${name}'`, 'names must be non-empty, without leading or trailing spaces', true));
      continue;
    }
    if (!isRecord(entry)) {
      into.problems.push(doc.problem(at, `'${name}' must be a mapping`, 'write NAME: { roles: [...], grants: [...] }'));
      continue;
    }
    visit(name, entry, at);
  }
}

function checkFields(doc: SourceDocument, entry: Record<string, unknown>, at: string[], allowed: readonly string[], into: Collected): void {
  for (const key of Object.keys(entry)) {
    if (!allowed.includes(key)) into.problems.push(doc.problem([...at, key], `unknown field '${key}'`, `allowed fields: ${allowed.join(', ')}`, true));
  }
}

function stringList(doc: SourceDocument, entry: Record<string, unknown>, at: string[], into: Collected): string[] {
  const value = entry[at[at.length - 1] as string];
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((item): item is string => typeof item === 'string' && item.length > 0)) {
    into.problems.push(doc.problem(at, 'must be a list of names', 'write [name1, name2]'));
    return [];
  }
  return value;
}

function grants(doc: SourceDocument, entry: Record<string, unknown>, at: string[], via: string, into: Collected): Grant[] {
  const list = entry['grants'];
  if (list === undefined) return [];
  if (!Array.isArray(list)) {
    into.problems.push(doc.problem([...at, 'grants'], 'grants must be a list of scope strings', 'write grants: ["read:filesystem:/tmp/logs"]'));
    return [];
  }
  const result: Grant[] = [];
  list.forEach((entry: unknown, index) => {
    const path = [...at, 'grants', index];
    const parsed = grantEntry(doc, entry, path, into);
    if (parsed === undefined) return;
    const { text: item, approval } = parsed;
    const scope = parseScope(item, 'grant');
    if (!scope.ok) {
      into.problems.push(doc.problem(path, scope.error, 'see docs/policy.md for the scope grammar'));
      return;
    }
    const risk = riskOf(scope.value);
    if (risk !== undefined) into.warnings.push(doc.problem(path, `risky grant '${item}': ${risk}`, 'grant the narrowest scope the agent needs'));
    if (approval !== undefined && !(scope.value.action === 'exec' && scope.value.resource === 'tools')) {
      into.problems.push(doc.problem([...path, 'approval'], `approval applies to tool calls only, not to '${item}'`, 'put approval: required on an exec:tools grant'));
      return;
    }
    result.push({ scope: scope.value, via, source: where(doc, path), ...(approval === undefined ? {} : { approval }) });
  });
  return result;
}

/** A grant is a scope string, or a mapping with `scope` and the approval fields. */
function grantEntry(doc: SourceDocument, entry: unknown, path: (string | number)[], into: Collected): { text: string; approval?: { timeoutSeconds: number } } | undefined {
  if (typeof entry === 'string') return { text: entry };
  if (!isRecord(entry) || typeof entry['scope'] !== 'string') {
    into.problems.push(doc.problem(path, 'a grant must be a scope string or { scope: "...", approval: required }', 'write "ACTION:RESOURCE:TARGET", e.g. "read:filesystem:/tmp/logs"'));
    return undefined;
  }
  let bad = false;
  for (const key of Object.keys(entry)) {
    if (GRANT_FIELDS.includes(key)) continue;
    into.problems.push(doc.problem([...path, key], `unknown field '${key}'`, `allowed fields: ${GRANT_FIELDS.join(', ')}`, true));
    bad = true;
  }
  const approval = entry['approval'];
  const timeout = entry['approvalTimeoutSeconds'];
  if (approval !== undefined && approval !== 'required' && approval !== 'none') {
    into.problems.push(doc.problem([...path, 'approval'], `approval must be 'required' or 'none', got ${JSON.stringify(approval)}`, 'write approval: required'));
    bad = true;
  }
  if (timeout !== undefined && (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1 || timeout > MAX_APPROVAL_TIMEOUT_SECONDS)) {
    into.problems.push(doc.problem([...path, 'approvalTimeoutSeconds'], `approvalTimeoutSeconds must be a whole number of seconds from 1 to ${MAX_APPROVAL_TIMEOUT_SECONDS}`, 'write approvalTimeoutSeconds: 120'));
    bad = true;
  }
  if (timeout !== undefined && approval !== 'required') {
    into.problems.push(doc.problem([...path, 'approvalTimeoutSeconds'], 'approvalTimeoutSeconds without approval: required', 'add approval: required or remove approvalTimeoutSeconds'));
    bad = true;
  }
  if (bad) return undefined;
  return approval === 'required' ? { text: entry['scope'], approval: { timeoutSeconds: typeof timeout === 'number' ? timeout : DEFAULT_APPROVAL_TIMEOUT_SECONDS } } : { text: entry['scope'] };
}

/** Grants broad enough that a reviewer should look twice. */
export function riskOf(scope: Scope): string | undefined {
  const target = scope.target;
  if (scope.resource === 'filesystem' && target.kind === 'path' && (target.any || target.path === '/')) return `${scope.action} access to the whole filesystem`;
  if (scope.resource === 'network' && target.kind === 'network' && target.host.type === 'any') return 'network access to any host';
  if (scope.resource === 'tools' && target.kind === 'names' && (target.any || target.names.some((name) => name.name === '*'))) {
    return target.any ? 'may call every tool of every server' : 'may call every tool of a server';
  }
  if (scope.resource === 'resources' && target.kind === 'uri' && target.any) return 'may read every resource';
  return undefined;
}

function where(doc: SourceDocument, path: readonly (string | number)[]): string {
  const position = doc.at(path);
  return position.line === undefined ? doc.file : `${doc.file}:${position.line}`;
}

function cycleProblems(roles: ReadonlyMap<string, RoleDefinition>): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, chain: string[]): void => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      const role = roles.get(name);
      problems.push({ file: role?.source ?? '?', line: undefined, column: undefined, field: `roles.${name}.extends`, message: `roles extend each other in a cycle: ${[...chain, name].join(' -> ')}`, fix: 'remove one extends entry' });
      return;
    }
    state.set(name, 'visiting');
    for (const parent of roles.get(name)?.extends ?? []) visit(parent, [...chain, name]);
    state.set(name, 'done');
  };
  for (const name of roles.keys()) visit(name, []);
  return problems;
}
