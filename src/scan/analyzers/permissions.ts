import { isAbsolute } from 'node:path';
import { makeFinding } from '../finding.js';
import type { ObservedAction } from '../report.js';
import type { Finding } from '../types.js';
import type { CodeFacts } from './code.js';

/** What a manifest's scopes allow, read leniently from `verb:resource:target` (e.g. `read:filesystem:/tmp/logs`). */
export interface DeclaredPermissions {
  filesystem: { verb: string; path: string }[];
  network: string[];
  exec: string[];
  unparsed: string[];
}

export function parseScopes(scopes: string[]): DeclaredPermissions {
  const out: DeclaredPermissions = { filesystem: [], network: [], exec: [], unparsed: [] };
  for (const scope of scopes) {
    const m = /^([a-z*]+):([a-z*]+):(.*)$/i.exec(scope.trim());
    if (!m) { out.unparsed.push(scope); continue; }
    const [, verb = '', resource = '', target = ''] = m;
    const r = resource.toLowerCase();
    if (r === 'filesystem' || r === 'fs' || r === 'file') out.filesystem.push({ verb: verb.toLowerCase(), path: target });
    else if (r === 'network' || r === 'net') out.network.push(target);
    else if (r === 'process' || r === 'exec' || r === 'command' || r === 'program' || (verb.toLowerCase() === 'exec' && r !== 'tools')) out.exec.push(target);
    else if (r !== 'tools') out.unparsed.push(scope);
  }
  return out;
}

function pathCovered(path: string, verb: 'read' | 'write', declared: DeclaredPermissions): boolean {
  return declared.filesystem.some((d) => {
    const verbOk = d.verb === '*' || d.verb === verb || (verb === 'read' && d.verb === 'write');
    const base = d.path.replace(/\/+$/, '');
    return verbOk && (d.path === '*' || path === base || path.startsWith(`${base}/`));
  });
}

/** `host:port`, `port`, `host`, `*`; `ip:port` targets from strace look like 127.0.0.1:8080. */
function networkCovered(target: string, declared: DeclaredPermissions): boolean {
  const [host = '', port = ''] = splitHostPort(target);
  return declared.network.some((d) => {
    if (d === '*') return true;
    if (/^\d+$/.test(d)) return d === port;
    const [dh = '', dp = ''] = splitHostPort(d);
    return (dh === '*' || dh === host) && (dp === '' || dp === '*' || dp === port);
  });
}

function splitHostPort(value: string): [string, string] {
  const v6 = /^\[(.*)\]:(\d+)$/.exec(value);
  if (v6) return [v6[1] ?? '', v6[2] ?? ''];
  const i = value.lastIndexOf(':');
  return i > 0 && /^\d+$/.test(value.slice(i + 1)) ? [value.slice(0, i), value.slice(i + 1)] : [value, ''];
}

function execCovered(program: string, declared: DeclaredPermissions): boolean {
  return declared.exec.some((d) => d === '*' || d === program || program.endsWith(`/${d}`) || d.replace(/^\[|\]$/g, '').split(/\s*,\s*/).some((p) => p === program || program.endsWith(`/${p}`)));
}

const WHY_STATIC = 'The manifest\'s scopes are the permission declaration reviewers approve and the sandbox enforces; code that can do more than declared will be denied at run time, or the declaration is incomplete.';
const WHY_OBSERVED = 'During the behaviour run the server did something its declared scopes do not allow; a server that reaches beyond its declaration is either misdeclared or hostile.';

export function analyzeStaticPermissions(facts: CodeFacts, declared: DeclaredPermissions): Finding[] {
  const findings: Finding[] = [];
  const check = (kind: 'filesystem' | 'network' | 'process', has: boolean, ruleId: string): void => {
    const uses = facts[kind];
    if (uses.length === 0 || has) return;
    findings.push(makeFinding({ ruleId, analyzer: 'permissions', title: `Code uses ${kind === 'process' ? 'processes' : `the ${kind}`} but the manifest declares no ${kind} scope`, severity: 'medium', confidence: 0.6, location: { subject: 'scopes' }, evidence: `used at ${uses.slice(0, 5).join(', ')}${uses.length > 5 ? ` and ${uses.length - 5} more` : ''}`, why: WHY_STATIC, remediation: `Declare the ${kind} access the server needs (e.g. ${kind === 'filesystem' ? 'read:filesystem:/data' : kind === 'network' ? 'write:network:api.example.com:443' : 'exec:process:/usr/bin/git'}), or remove the code.` }));
  };
  check('filesystem', declared.filesystem.length > 0, 'BST-P001');
  check('network', declared.network.length > 0, 'BST-P002');
  check('process', declared.exec.length > 0, 'BST-P003');
  if (declared.network.length > 0) {
    const undeclared = facts.hosts.filter((h) => !['localhost', '127.0.0.1', '::1', '[::1]'].includes(h) && !declared.network.some((d) => d === '*' || splitHostPort(d)[0] === h || splitHostPort(d)[0] === '*'));
    for (const host of undeclared.slice(0, 10)) {
      findings.push(makeFinding({ ruleId: 'BST-P004', analyzer: 'permissions', title: 'Host in code not covered by the network scope', severity: 'low', confidence: 0.4, location: { subject: 'scopes' }, evidence: host, why: 'The code names a host the manifest does not declare. Many are documentation links; a real destination must be declared.', remediation: 'Declare the host or ignore if it is not contacted.', discriminator: host }));
    }
  }
  return findings;
}

export function analyzeObservedPermissions(actions: ObservedAction[], declared: DeclaredPermissions): Finding[] {
  const findings: Finding[] = [];
  const seen = new Set<string>();
  for (const a of actions) {
    const key = `${a.kind}|${a.action}|${a.target}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const location = { subject: 'behaviour', field: `${a.kind}:${a.action}` };
    if (a.kind === 'file' && isAbsolute(a.target) && !pathCovered(a.target, a.action === 'read' ? 'read' : 'write', declared)) {
      findings.push(makeFinding({ ruleId: 'BST-P010', analyzer: 'permissions', title: `Undeclared file ${a.action}`, severity: 'high', confidence: 0.8, location, evidence: `${a.action} ${a.target} (${a.result})`, why: WHY_OBSERVED, remediation: 'Declare the path in a filesystem scope if it is legitimate, otherwise treat the server as hostile.', discriminator: key }));
    } else if (a.kind === 'network' && a.action !== 'bind' && !networkCovered(a.target, declared)) {
      findings.push(makeFinding({ ruleId: 'BST-P011', analyzer: 'permissions', title: 'Undeclared network connection', severity: 'high', confidence: 0.85, location, evidence: `${a.action} ${a.target} (${a.result})`, why: WHY_OBSERVED, remediation: 'Declare the destination in a network scope if it is legitimate, otherwise treat the server as hostile.', discriminator: key }));
    } else if (a.kind === 'process' && !execCovered(a.target, declared)) {
      findings.push(makeFinding({ ruleId: 'BST-P012', analyzer: 'permissions', title: 'Undeclared program execution', severity: 'high', confidence: 0.85, location, evidence: `exec ${a.target} (${a.result})`, why: WHY_OBSERVED, remediation: 'Declare the program in an exec scope if it is legitimate, otherwise treat the server as hostile.', discriminator: key }));
    }
  }
  return findings;
}
