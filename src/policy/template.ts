// Declared scopes may bind tool arguments: `read:filesystem:${path}`, `write:network:${req.url}`.
// The template is compiled once; per call the argument values are substituted and the
// result parsed in `concrete` mode, so a value can name one thing but never a wildcard or list.
import { canonicalizeLexical, type PathRejection } from './path.js';
import { parseScope, parseTarget, splitScope, type Action, type ParseResult, type ResourceKind, type Scope, type Target } from './scope.js';

const BINDING = /\$\{([^}]*)\}/g;
const ARGUMENT_PATH = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$/;
/** Most concrete scopes one template may expand to (array arguments multiply). */
export const MAX_EXPANSIONS = 256;

export type DeclaredScope =
  | { readonly bound: false; readonly scope: Scope }
  | { readonly bound: true; readonly text: string; readonly action: Action; readonly resource: ResourceKind; readonly parts: readonly string[]; readonly args: readonly (readonly string[])[] };

/** parts[0] args[0] parts[1] args[1] ... parts[n]: literals interleaved with argument paths. */
export function compileDeclared(text: string): ParseResult<DeclaredScope> {
  const trimmed = text.trim();
  if (!trimmed.includes('${')) {
    const scope = parseScope(trimmed, 'declared');
    return scope.ok ? { ok: true, value: { bound: false, scope: scope.value } } : scope;
  }
  const split = splitScope(trimmed);
  if (!split.ok) return split;
  const parts: string[] = [];
  const args: string[][] = [];
  let last = 0;
  for (const match of split.value.target.matchAll(BINDING)) {
    const name = (match[1] ?? '').trim();
    if (!ARGUMENT_PATH.test(name)) return { ok: false, error: `'${trimmed}': invalid argument reference '\${${match[1] ?? ''}}' (write \${name} or \${outer.inner})` };
    parts.push(split.value.target.slice(last, match.index));
    args.push(name.split('.'));
    last = (match.index ?? 0) + match[0].length;
  }
  const tail = split.value.target.slice(last);
  if (tail.includes('${') || parts.some((part) => part.includes('${'))) return { ok: false, error: `'${trimmed}': unclosed \${` };
  parts.push(tail);
  return { ok: true, value: { bound: true, text: trimmed, action: split.value.action, resource: split.value.resource, parts, args } };
}

export type Expansion = { ok: true; targets: Array<{ text: string; target: Target }> } | { ok: false; reason: 'argument_missing' | 'argument_not_bindable' | 'argument_invalid' | 'too_many_values' | PathRejection; message: string };

/** Fills in argument values and parses each resulting target. Any failure denies the call. */
export function expand(declared: Extract<DeclaredScope, { bound: true }>, args: Readonly<Record<string, unknown>>): Expansion {
  let texts: string[] = [declared.parts[0] ?? ''];
  for (let index = 0; index < declared.args.length; index += 1) {
    const path = declared.args[index] as readonly string[];
    const values = argumentValues(args, path);
    if (typeof values === 'string') {
      const reason = values === 'missing' ? 'argument_missing' : 'argument_not_bindable';
      const what = values === 'missing' ? 'is missing' : 'is not a string, a number or a list of strings';
      return { ok: false, reason, message: `argument '${path.join('.')}' ${what}, so '${declared.text}' cannot be checked` };
    }
    if (texts.length * values.length > MAX_EXPANSIONS) return { ok: false, reason: 'too_many_values', message: `'${declared.text}' expands to more than ${MAX_EXPANSIONS} values` };
    const suffix = declared.parts[index + 1] ?? '';
    texts = texts.flatMap((prefix) => values.map((value) => prefix + value + suffix));
  }
  const targets: Array<{ text: string; target: Target }> = [];
  for (const text of texts) {
    if (declared.resource === 'filesystem') {
      // Say precisely why a path is refused (NUL byte, encoding, relative...), for the audit record.
      const path = canonicalizeLexical(text);
      if (!path.ok) return { ok: false, reason: path.reason, message: `'${declared.text}' with the given arguments: ${path.message}` };
      targets.push({ text, target: { kind: 'path', any: false, path: path.path } });
      continue;
    }
    const target = parseTarget(declared.resource, text, 'concrete');
    if (!target.ok) return { ok: false, reason: 'argument_invalid', message: `'${declared.text}' with the given arguments: ${target.error}` };
    targets.push({ text, target: target.value });
  }
  return { ok: true, targets };
}

function argumentValues(args: Readonly<Record<string, unknown>>, path: readonly string[]): string[] | 'missing' | 'unbindable' {
  let value: unknown = args;
  for (const key of path) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, key)) return 'missing';
    value = (value as Record<string, unknown>)[key];
  }
  if (typeof value === 'string') return [value];
  if (typeof value === 'number' && Number.isFinite(value)) return [String(value)];
  if (Array.isArray(value) && value.length > 0 && value.every((item): item is string => typeof item === 'string')) return value;
  if (value === undefined) return 'missing';
  return 'unbindable';
}
