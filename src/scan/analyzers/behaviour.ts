import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { makeFinding } from '../finding.js';
import type { BehaviourSummary, ObservedAction } from '../report.js';
import type { RuleSet } from '../rules.js';
import { collectListing } from '../targets.js';
import { severityRank, type Finding, type ServerMetadata, type StdioCommand } from '../types.js';
import { scanText } from './metadata.js';
import { startSandboxed, type SandboxedRun } from './sandboxed.js';
import type { SandboxBackend } from '../../sandbox/index.js';

/** A deterministic value for a JSON Schema: the same schema always yields the same arguments. */
export function generateValue(schema: unknown, depth = 0): unknown {
  if (typeof schema !== 'object' || schema === null || depth > 6) return null;
  const s = schema as Record<string, unknown>;
  if (s.const !== undefined) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  if (s.default !== undefined) return s.default;
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    const list = s[key];
    if (Array.isArray(list) && list.length > 0) return generateValue(list[0], depth + 1);
  }
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
  switch (type) {
    case 'string': {
      if (s.format === 'uri' || s.format === 'url') return 'http://127.0.0.1:9/bastion-probe';
      if (s.format === 'email') return 'probe@example.invalid';
      if (s.format === 'date-time') return '2026-01-01T00:00:00Z';
      if (s.format === 'date') return '2026-01-01';
      const min = typeof s.minLength === 'number' ? s.minLength : 0;
      return 'bastion-probe'.padEnd(min, 'x');
    }
    case 'integer':
    case 'number':
      return typeof s.minimum === 'number' ? s.minimum : typeof s.exclusiveMinimum === 'number' ? s.exclusiveMinimum + 1 : 1;
    case 'boolean':
      return false;
    case 'array': {
      const min = typeof s.minItems === 'number' ? s.minItems : 0;
      return Array.from({ length: Math.max(min, 1) }, () => generateValue(s.items, depth + 1));
    }
    case 'null':
      return null;
    default: {
      const props = typeof s.properties === 'object' && s.properties !== null ? (s.properties as Record<string, unknown>) : {};
      const required = Array.isArray(s.required) ? s.required.filter((r): r is string => typeof r === 'string') : Object.keys(props);
      const out: Record<string, unknown> = {};
      for (const name of required) out[name] = generateValue(props[name], depth + 1);
      return out;
    }
  }
}

const OPEN_CALLS = new Set(['open', 'openat', 'openat2', 'creat']);
const WRITE_CALLS: Record<string, string> = { unlink: 'delete', unlinkat: 'delete', rmdir: 'delete', rename: 'write', renameat: 'write', renameat2: 'write', mkdir: 'write', mkdirat: 'write', truncate: 'write', symlink: 'write', symlinkat: 'write', link: 'write', linkat: 'write', chmod: 'write', fchmodat: 'write' };
const PROBE_CALLS = new Set(['stat', 'lstat', 'newfstatat', 'statx', 'access', 'faccessat', 'faccessat2', 'readlink', 'readlinkat']);
const CREDENTIAL_PATH = /\/\.ssh(\/|$)|\/id_(rsa|ed25519|ecdsa|dsa)\b|\.aws\/credentials|\/\.(npmrc|pypirc|netrc|git-credentials)$|\.docker\/config\.json|\.kube\/config|\/\.gnupg|Login Data|Cookies|logins\.json|key[34]\.db|wallet\.dat|claude_desktop_config\.json|\.cursor\/mcp\.json|\/etc\/shadow|(^|\/)\.env$/;

function resultOf(line: string): ObservedAction['result'] {
  const m = /\)\s+=\s+(-?\d+|\?)(\s+(\w+))?/.exec(line);
  if (!m || m[1] === '?') return 'unknown';
  if (!m[1]?.startsWith('-')) return 'ok';
  return m[3] === 'EACCES' || m[3] === 'EPERM' ? 'denied' : m[3] === 'EINPROGRESS' ? 'ok' : 'error';
}

/** Parses `strace -f` output into file, network and process actions (no filtering). */
export function parseStrace(text: string): (ObservedAction & { probe?: boolean })[] {
  const actions: (ObservedAction & { probe?: boolean })[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+(\w+)\((.*)$/.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    const call = m[2] as string;
    const rest = m[3] as string;
    const result = resultOf(line);
    const firstPath = /"((?:[^"\\]|\\.)*)"/.exec(rest)?.[1];
    if (OPEN_CALLS.has(call) && firstPath !== undefined) {
      const write = call === 'creat' || /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND/.test(rest);
      actions.push({ kind: 'file', action: write ? 'write' : 'read', target: firstPath, result, pid });
    } else if (WRITE_CALLS[call] !== undefined && firstPath !== undefined) {
      actions.push({ kind: 'file', action: WRITE_CALLS[call] as string, target: firstPath, result, pid });
    } else if (PROBE_CALLS.has(call) && firstPath !== undefined) {
      actions.push({ kind: 'file', action: 'stat', target: firstPath, result, pid, probe: true });
    } else if (call === 'execve' || call === 'execveat') {
      if (firstPath !== undefined) actions.push({ kind: 'process', action: 'exec', target: firstPath, result, pid });
    } else if (call === 'socket' && /^AF_INET6?\b/.test(rest) && result !== 'ok' && result !== 'unknown') {
      // A sandbox without network refuses the socket itself, so no connect (and no address) follows.
      actions.push({ kind: 'network', action: 'socket', target: rest.split(',')[0] ?? 'AF_INET', result, pid });
    } else if (call === 'connect' || call === 'bind' || call === 'sendto' || call === 'sendmsg') {
      const target = socketTarget(rest);
      if (target) actions.push({ kind: 'network', action: call === 'sendmsg' ? 'sendto' : call, target, result, pid });
    }
  }
  return actions;
}

function socketTarget(args: string): string | undefined {
  const v4 = /sin_port=htons\((\d+)\), sin_addr=inet_addr\("([\d.]+)"\)/.exec(args);
  if (v4) return `${v4[2]}:${v4[1]}`;
  const v6 = /sin6_port=htons\((\d+)\).*?inet_pton\(AF_INET6, "([^"]+)"/.exec(args);
  if (v6) return `[${v6[2]}]:${v6[1]}`;
  const unix = /sa_family=AF_UNIX, sun_path=(@?"[^"]*")/.exec(args);
  if (unix) return `unix:${unix[1]?.replace(/"/g, '')}`;
  return undefined;
}

/** Files any Node program opens at start (runtime, libc, locale, TLS config): not the server's doing. */
function runtimeRoots(cmd: StdioCommand): string[] {
  const roots = ['/proc/', '/sys/', '/dev/', '/usr/lib/', '/usr/share/', '/lib/', '/lib64/', '/usr/lib64/', '/etc/ld.so', '/etc/ssl/', '/etc/localtime', '/etc/nsswitch.conf', '/etc/host.conf', '/etc/hosts', '/etc/resolv.conf', '/etc/gai.conf', `${dirname(dirname(process.execPath))}/`];
  for (const arg of [cmd.command, ...cmd.args]) {
    const full = resolve(cmd.cwd ?? process.cwd(), arg);
    if (!existsSync(full) || !statSync(full).isFile()) continue;
    // The server's own package and the dependencies it resolves live above its entry file up to the node_modules root.
    let dir = dirname(full);
    for (let i = 0; i < 8 && dir !== dirname(dir); i += 1) {
      if (existsSync(join(dir, 'node_modules')) || existsSync(join(dir, 'package.json'))) roots.push(`${dir}/`);
      dir = dirname(dir);
      if (existsSync(join(dir, 'node_modules'))) { roots.push(`${dir}/`); break; }
    }
  }
  return roots;
}

/** Directories a sandboxed server needs read-only: its entry file's package and the node_modules it resolves from. */
export function packageDirsFor(cmd: StdioCommand): string[] {
  const dirs = new Set<string>();
  for (const arg of cmd.args) {
    const full = resolve(cmd.cwd ?? process.cwd(), arg);
    if (!existsSync(full) || !statSync(full).isFile()) continue;
    let dir = dirname(full);
    for (let i = 0; i < 10 && dir !== dirname(dir); i += 1) {
      if (existsSync(join(dir, 'package.json'))) dirs.add(dir);
      if (existsSync(join(dir, 'node_modules'))) { dirs.add(dir); break; }
      dir = dirname(dir);
    }
  }
  return [...dirs];
}

export function filterActions(actions: (ObservedAction & { probe?: boolean })[], cmd: StdioCommand, serverExecutable: string | undefined): ObservedAction[] {
  const roots = runtimeRoots(cmd);
  const out: ObservedAction[] = [];
  const seen = new Set<string>();
  const rootPid = actions[0]?.pid;
  const ownName = serverExecutable?.split('/').pop() ?? '';
  for (const a of actions) {
    const sensitive = a.kind === 'file' && CREDENTIAL_PATH.test(a.target);
    if (a.kind === 'file' && !sensitive) {
      if (a.probe) continue;
      if (a.action === 'read' && roots.some((r) => a.target.startsWith(r) || `${a.target}/` === r)) continue;
      if (!a.target.startsWith('/')) continue;
    }
    // strace's own exec of the server (including PATH attempts) happens in the first process.
    if (a.kind === 'process' && a.pid === rootPid && ownName !== '' && a.target.split('/').pop() === ownName) continue;
    if (a.kind === 'network' && a.target.startsWith('unix:')) continue;
    const { probe: _p, ...clean } = a;
    const key = `${clean.kind}|${clean.action}|${clean.target}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(clean);
  }
  return out;
}

export interface BehaviourSandbox {
  backend: SandboxBackend;
  /** The manifest's declared scopes: they build the sandbox's view (files, egress). */
  scopes: string[];
  /** The server's package and node_modules, bound read-only. */
  packageDirs: string[];
}

export interface BehaviourOptions {
  /** Run inside the Bastion sandbox (strace attached from outside); omit for an unsandboxed child of strace. */
  sandbox?: BehaviourSandbox;
  callTimeoutMs?: number;
  startTimeoutMs?: number;
  maxToolsCalled?: number;
  /** Extra tool arguments to use instead of generated ones, by tool name. */
  argumentOverrides?: Record<string, Record<string, unknown>>;
}

export interface BehaviourResult {
  summary: BehaviourSummary;
  findings: Finding[];
  metadata: ServerMetadata;
}

function textOf(result: unknown): string {
  const content = (result as { content?: unknown })?.content;
  if (!Array.isArray(content)) return JSON.stringify(result ?? '');
  return content.map((c) => (typeof c === 'object' && c !== null && typeof (c as { text?: unknown }).text === 'string' ? (c as { text: string }).text : '')).join('\n');
}

/**
 * Starts the server under `strace -f`, runs initialize, the list calls and one call per tool with
 * generated arguments, then reports what it touched. NOT a sandbox: run hostile servers only inside one.
 */
export async function runBehaviour(cmd: StdioCommand, rules: RuleSet, options: BehaviourOptions = {}): Promise<BehaviourResult> {
  const t = rules.thresholds.behaviour;
  const callTimeoutMs = options.callTimeoutMs ?? t.callTimeoutMs;
  const work = mkdtempSync(join(tmpdir(), 'bastion-behaviour-'));
  const traceFile = join(work, 'trace.txt');
  let sandboxed: SandboxedRun | undefined;
  let transport: Transport;
  if (options.sandbox) {
    sandboxed = await startSandboxed(options.sandbox.backend, { serverName: 'scan', command: cmd.command, args: cmd.args, env: cmd.env ?? {}, packageDirs: options.sandbox.packageDirs, scopes: options.sandbox.scopes, ...(cmd.cwd ? { cwd: cmd.cwd } : {}) }, traceFile);
    transport = sandboxed.transport;
  } else {
    transport = new StdioClientTransport({
      command: 'strace',
      args: ['-f', '-qq', '-s', '512', '-e', 'trace=file,network,process', '-e', 'signal=none', '-o', traceFile, '--', cmd.command, ...cmd.args],
      ...(cmd.env ? { env: cmd.env } : {}),
      ...(cmd.cwd ? { cwd: cmd.cwd } : {}),
      stderr: 'ignore',
    });
  }
  const client = new Client({ name: 'bastion-scan-behaviour', version: '1' }, { capabilities: {} });
  const findings: Finding[] = [];
  const toolsCalled: BehaviourSummary['toolsCalled'] = [];
  let metadata: ServerMetadata;
  try {
    await client.connect(transport, { timeout: options.startTimeoutMs ?? t.startTimeoutMs });
    metadata = (await collectListing(client, callTimeoutMs)).metadata;
    for (const tool of metadata.tools.slice(0, options.maxToolsCalled ?? t.maxToolsCalled)) {
      const args = options.argumentOverrides?.[tool.name] ?? (generateValue(tool.inputSchema ?? { type: 'object' }) as Record<string, unknown>);
      try {
        const result = await client.callTool({ name: tool.name, arguments: args }, undefined, { timeout: callTimeoutMs });
        toolsCalled.push({ tool: tool.name, arguments: args, ok: result.isError !== true });
        const output = textOf(result);
        for (const f of scanText(output, { subject: `tool:${tool.name}`, field: 'callResult' }, rules, 'behaviour')) {
          if (severityRank(f.severity) < severityRank('medium')) continue;
          findings.push(makeFinding({ ruleId: 'BST-B002', analyzer: 'behaviour', title: `Tool output carries instructions to the model (${f.title})`, severity: f.severity === 'critical' ? 'critical' : 'high', confidence: f.confidence, location: f.location, evidence: f.evidence, why: `${f.why} Here it came back in a tool result, where the model reads it as context (indirect prompt injection).`, remediation: 'Do not connect this server, or filter its outputs.', discriminator: f.ruleId }));
        }
      } catch (error) {
        toolsCalled.push({ tool: tool.name, arguments: args, ok: false, error: (error as Error).message.slice(0, 200) });
      }
    }
  } finally {
    await client.close().catch(() => undefined);
    await sandboxed?.stop();
  }
  const raw = existsSync(traceFile) ? readFileSync(traceFile, 'utf8') : '';
  // The sandbox's egress broker sees every connection attempt, allowed or refused, even untraced ones.
  const brokered: ObservedAction[] = (sandboxed?.egress ?? []).map((e) => ({ kind: 'network', action: 'connect', target: `${e.host}:${e.port}`, result: e.allowed ? 'ok' : 'denied', pid: 0 }));
  rmSync(work, { recursive: true, force: true });
  const actions = [...filterActions(parseStrace(raw), cmd, sandboxed ? undefined : cmd.command), ...brokered];
  for (const a of actions) {
    if (a.kind === 'file' && CREDENTIAL_PATH.test(a.target)) {
      findings.push(makeFinding({ ruleId: 'BST-B001', analyzer: 'behaviour', title: 'Server touched a credential file', severity: 'critical', confidence: 0.95, location: { subject: 'behaviour', field: `file:${a.action}` }, evidence: `${a.action} ${a.target} (${a.result}, pid ${a.pid})`, why: 'During the behaviour run the server accessed a file where credentials live.', remediation: 'Do not run this server.', discriminator: `${a.action}|${a.target}` }));
    } else {
      findings.push(makeFinding({ ruleId: 'BST-B010', analyzer: 'behaviour', title: `Observed ${a.kind} ${a.action}`, severity: 'info', confidence: 1, location: { subject: 'behaviour', field: `${a.kind}:${a.action}` }, evidence: `${a.target} (${a.result}, pid ${a.pid})`, why: 'Every file, network and process action seen during the behaviour run is listed for review.', remediation: 'Check it is covered by the declared scopes.', discriminator: `${a.kind}|${a.action}|${a.target}` }));
    }
  }
  if (raw.length === 0) {
    findings.push(makeFinding({ ruleId: 'BST-B020', analyzer: 'behaviour', title: 'No syscall trace was produced', severity: 'medium', confidence: 0.9, location: { subject: 'behaviour' }, evidence: 'strace wrote nothing', why: 'Without a trace, file and network behaviour was not observed; the run proves nothing.', remediation: 'Check strace is installed and ptrace is permitted (kernel.yama.ptrace_scope, container seccomp).' }));
  }
  return {
    summary: {
      traced: raw.length > 0 ? 'strace' : 'none',
      sandboxed: sandboxed !== undefined,
      sandboxNote: sandboxed
        ? `ran in the ${sandboxed.handle.backend} sandbox with the declared scopes; strace attached after start-up; egress broker events included${sandboxed.handle.warnings.length > 0 ? `; warnings: ${sandboxed.handle.warnings.join('; ')}` : ''}`
        : 'the server ran as an unsandboxed child of strace; run behaviour scans on a disposable machine or with --sandbox',
      toolsCalled,
      actions,
    },
    findings,
    metadata,
  };
}
