import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { makeFinding } from '../finding.js';
import { isSeverity, type Finding, type Severity } from '../types.js';

export interface YaraMatch {
  rule: string;
  meta: Record<string, string>;
  file: string;
  /** Byte offset of the first matched string, when yara printed one. */
  offset?: number;
  matched?: string;
}

export class YaraUnavailableError extends Error {
  constructor(detail: string) {
    super(`yara could not run (${detail}). Install it (Debian: apt-get install yara); the scan does not pass without its malware rules.`);
    this.name = 'YaraUnavailableError';
  }
}

function parseMeta(text: string): Record<string, string> {
  const meta: Record<string, string> = {};
  for (const m of text.matchAll(/(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\]]*))/g)) meta[m[1] as string] = m[2] ?? m[3] ?? '';
  return meta;
}

/** Parses `yara -m -s` output: a header line per (rule, file), then `0xOFF:$id: text` lines. */
export function parseYaraOutput(stdout: string): YaraMatch[] {
  const matches: YaraMatch[] = [];
  let current: YaraMatch | undefined;
  for (const line of stdout.split('\n')) {
    if (line.length === 0) continue;
    const str = /^0x([0-9a-f]+):\$[\w]*: ?(.*)$/.exec(line);
    if (str && current) {
      if (current.offset === undefined) {
        current.offset = Number.parseInt(str[1] as string, 16);
        current.matched = str[2] ?? '';
      }
      continue;
    }
    const header = /^(\w+) (?:\[(.*)\] )?(.+)$/.exec(line);
    if (!header) continue;
    current = { rule: header[1] as string, meta: parseMeta(header[2] ?? ''), file: header[3] as string };
    matches.push(current);
  }
  return matches;
}

export interface YaraRunOptions {
  yaraBinary?: string;
  timeoutSeconds?: number;
  threads?: number;
}

/** Runs the yara CLI (argv only, no shell) over the given files with the given rule files. */
export async function runYara(ruleFiles: string[], files: string[], options: YaraRunOptions = {}): Promise<YaraMatch[]> {
  if (ruleFiles.length === 0 || files.length === 0) return [];
  const work = mkdtempSync(join(tmpdir(), 'bastion-yara-'));
  try {
    const list = join(work, 'files.txt');
    writeFileSync(list, `${files.join('\n')}\n`);
    const args = ['-w', '-m', '-s', '-N', '-a', String(options.timeoutSeconds ?? 60), '-p', String(options.threads ?? 2), ...ruleFiles, '--scan-list', list];
    const { code, stdout, stderr } = await run(options.yaraBinary ?? 'yara', args);
    if (code !== 0) throw new YaraUnavailableError(`exit ${code}: ${stderr.trim().slice(0, 300)}`);
    return parseYaraOutput(stdout);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error) => reject(new YaraUnavailableError(error.message)));
    child.on('close', (code) => resolvePromise({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

function lineOf(file: string, offset: number | undefined): number | undefined {
  if (offset === undefined) return undefined;
  try {
    const bytes = readFileSync(file);
    let line = 1;
    for (let i = 0; i < offset && i < bytes.length; i += 1) if (bytes[i] === 0x0a) line += 1;
    return line;
  } catch {
    return undefined;
  }
}

export function yaraFindings(matches: YaraMatch[], root: string): Finding[] {
  return matches.map((m) => {
    const severity: Severity = isSeverity(m.meta.severity) ? m.meta.severity : 'high';
    const line = lineOf(m.file, m.offset);
    return makeFinding({
      ruleId: `BST-Y:${m.rule}`,
      analyzer: 'yara',
      title: m.meta.description ?? `YARA rule ${m.rule}`,
      severity,
      confidence: 0.8,
      location: { file: relative(root, m.file).split('\\').join('/'), ...(line !== undefined ? { line } : {}) },
      evidence: m.matched !== undefined ? `${m.rule}: ${m.matched}` : m.rule,
      why: `The file matches the project's YARA rule ${m.rule}: ${m.meta.description ?? ''}`.trim(),
      remediation: 'Inspect the matched code. If it is benign, suppress this finding with a reason and reviewer; otherwise do not install the package.',
    });
  });
}
