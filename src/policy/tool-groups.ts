// Named tool groups in policy files: `toolGroups: { readers: [fs.read_file, fs.list_directory] }`
// and a grant that names one with `@`: `exec:tools:@readers` or `exec:tools:[@readers, git.log]`.
// A group is expanded into its members when the policy compiles, so the evaluator, explain and
// approval see ordinary tool names; the grant keeps the text it was written with.
import type { PolicyProblem } from './errors.js';
import type { Grant } from './policy-file.js';
import type { QualifiedName } from './scope.js';
import { isRecord, type SourceDocument } from './source.js';

export interface ToolGroup {
  readonly name: string;
  readonly members: readonly QualifiedName[];
  readonly source: string;
}

const GROUP_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** A member is server.tool: groups name tools of one server each (server.* would be a server-wide grant in disguise). */
const MEMBER = /^([a-z][a-z0-9-]{0,31})\.([A-Za-z0-9_\-.:/@]{1,128})$/;

/** Reads a document's toolGroups section into `groups`; problems name the line. */
export function collectToolGroups(doc: SourceDocument, root: Record<string, unknown>, groups: Map<string, ToolGroup>, problems: PolicyProblem[]): void {
  const section = root['toolGroups'];
  if (section === undefined || section === null) return;
  if (!isRecord(section)) {
    problems.push(doc.problem(['toolGroups'], 'toolGroups must be a mapping of group names to lists of tools', 'write toolGroups: { readers: [fs.read_file, fs.list_directory] }'));
    return;
  }
  for (const [name, list] of Object.entries(section)) {
    const at = ['toolGroups', name];
    if (!GROUP_NAME.test(name)) {
      problems.push(doc.problem(at, `invalid group name '${name}'`, 'use 1-64 letters, digits, _ or -', true));
      continue;
    }
    if (!Array.isArray(list) || list.length === 0) {
      problems.push(doc.problem(at, `group '${name}' must be a non-empty list of server.tool names`, `write ${name}: [fs.read_file]`));
      continue;
    }
    const members: QualifiedName[] = [];
    list.forEach((item: unknown, index) => {
      const match = typeof item === 'string' ? MEMBER.exec(item) : null;
      if (match === null) problems.push(doc.problem([...at, index], `'${String(item)}' is not a server.tool name`, 'write the tool as SERVER.TOOL, e.g. fs.read_file (the upstream name, not a curated rename)'));
      else members.push({ server: match[1], name: match[2] as string });
    });
    const position = doc.at(at);
    const source = position.line === undefined ? doc.file : `${doc.file}:${position.line}`;
    const existing = groups.get(name);
    if (existing !== undefined) problems.push(doc.problem(at, `tool group '${name}' is already defined at ${existing.source}`, 'rename one of them or merge them', true));
    else groups.set(name, { name, members, source });
  }
}

/** The grant with every `@group` of an exec:tools target replaced by the group's members. */
export function expandGroups(grant: Grant, groups: ReadonlyMap<string, ToolGroup>, problems: PolicyProblem[]): Grant {
  const target = grant.scope.target;
  if (grant.scope.resource !== 'tools' || target.kind !== 'names' || !target.names.some(isGroupReference)) return grant;
  const names: QualifiedName[] = [];
  for (const name of target.names) {
    if (!isGroupReference(name)) {
      names.push(name);
      continue;
    }
    const group = groups.get(name.name.slice(1));
    if (group === undefined) {
      const known = [...groups.keys()];
      problems.push({ ...sourceOf(grant.source), field: 'grants', message: `unknown tool group '${name.name}' in '${grant.scope.text}'`, fix: known.length === 0 ? 'define it under toolGroups: in a policy file' : `define it under toolGroups: or use one of ${known.map((known) => `@${known}`).join(', ')}` });
      continue;
    }
    names.push(...group.members);
  }
  return { ...grant, scope: { ...grant.scope, target: { kind: 'names', any: false, names } } };
}

function isGroupReference(name: QualifiedName): boolean {
  return name.server === undefined && name.name.startsWith('@');
}

function sourceOf(source: string): Pick<PolicyProblem, 'file' | 'line' | 'column'> {
  const match = /^(.*):(\d+)$/.exec(source);
  return match === null ? { file: source, line: undefined, column: undefined } : { file: match[1] as string, line: Number(match[2]), column: undefined };
}
