import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseCheckpoint, verifyCheckpointSignature, type ParsedCheckpoint } from './checkpoint.js';
import type { NoteVerifier } from './keys.js';
import { listCheckpoints } from './layout.js';
import { scanLog } from './scan.js';

/**
 * Witnessed checkpoints: the copies a sink, a mirror directory or any other holder kept of the
 * log's signed checkpoints. Someone who can rewrite the log directory, even with the signing key,
 * cannot rewrite those copies too; comparing them with the local log shows a rewrite (fork), a
 * cut (truncation) or a deleted local checkpoint.
 */

export type WitnessFindingKind = 'fork' | 'truncated' | 'missing-checkpoint';

export interface WitnessFinding {
  kind: WitnessFindingKind;
  size: number;
  index?: number;
  message: string;
}

export interface WitnessReport {
  /** Witnessed checkpoints of this log whose signature verified. */
  witnessed: number;
  /** Notes that were not this log's, or whose signature did not verify (ignored). */
  ignored: number;
  findings: WitnessFinding[];
}

/** Exit codes of `mcp-auditctl verify --witness`, after those of verify (0, 2, 3, 4). */
export const WitnessExit = { Fork: 5, Truncated: 6, MissingCheckpoint: 7 } as const;

/**
 * Signed notes found in a text: a checkpoint note itself (cp-<size>.txt), or lines holding
 * {"checkpoint":{"note":...}} as Bastion's sinks ship them (a webhook receiver's JSON lines, an
 * rsyslog output file with the syslog header before the JSON).
 */
export function notesInText(text: string): string[] {
  if (/^\S+\n\d+\n/.test(text) && text.includes('\n\n\u2014 ')) return [text];
  const notes: string[] = [];
  for (const line of text.split('\n')) {
    const at = line.indexOf('{"checkpoint":');
    if (at < 0) continue;
    try {
      const note = (JSON.parse(line.slice(at)) as { checkpoint?: { note?: unknown } }).checkpoint?.note;
      if (typeof note === 'string') notes.push(note);
    } catch {
      // Not a shipped checkpoint line.
    }
  }
  return notes;
}

/** Every note in the files of a directory (not recursive). */
export function notesInDirectory(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const notes: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    notes.push(...notesInText(readFileSync(path, 'utf8')));
  }
  return notes;
}

export async function notesAt(source: string): Promise<string[]> {
  if (!/^https?:\/\//.test(source)) {
    if (!existsSync(source)) throw new Error(`witness ${source} does not exist: pass a directory of witnessed checkpoints or an http(s) URL`);
    return statSync(source).isDirectory() ? notesInDirectory(source) : notesInText(readFileSync(source, 'utf8'));
  }
  const response = await fetch(source, { signal: AbortSignal.timeout(30_000) });
  if (!response.ok) throw new Error(`witness ${source} answered HTTP ${response.status}`);
  return notesInText(await response.text());
}

/**
 * Compares the local log with witnessed notes. For each verified witnessed checkpoint: a local
 * checkpoint of the same size must have the same root, chain head and index; otherwise the local
 * records must reach its size (else truncation) and hash to its root (else fork), and the local
 * checkpoint is then missing.
 */
export function compareWithWitness(dir: string, origin: string, notes: readonly string[], verifier: NoteVerifier, localCheckpoints?: readonly ParsedCheckpoint[]): WitnessReport {
  const local = new Map<number, ParsedCheckpoint>();
  for (const checkpoint of localCheckpoints ?? listCheckpoints(dir).map((file) => file.checkpoint)) local.set(checkpoint.size, checkpoint);
  const witnessed = new Map<number, ParsedCheckpoint>();
  let ignored = 0;
  for (const note of notes) {
    let parsed: ParsedCheckpoint;
    try {
      parsed = parseCheckpoint(note, 'witnessed checkpoint');
      if (parsed.origin !== origin) throw new Error('another log');
      verifyCheckpointSignature(parsed, verifier);
    } catch {
      ignored += 1;
      continue;
    }
    witnessed.set(parsed.size, parsed);
  }
  const findings: WitnessFinding[] = [];
  let logSize: number | undefined;
  for (const checkpoint of [...witnessed.values()].sort((a, b) => a.size - b.size)) {
    const { size, index } = checkpoint;
    const mine = local.get(size);
    if (mine !== undefined) {
      if (!mine.root.equals(checkpoint.root) || mine.head !== checkpoint.head || mine.index !== index) findings.push({ kind: 'fork', size, index, message: `the local checkpoint of size ${size} (root ${mine.root.toString('base64')}, index ${mine.index ?? '-'}) differs from the witnessed one (root ${checkpoint.root.toString('base64')}, index ${index ?? '-'}): the log was rewritten after the witness received it` });
      continue;
    }
    logSize ??= scanLog(dir, { checkpoints: [] }).nextSeq;
    if (size > logSize) {
      findings.push({ kind: 'truncated', size, index, message: `a witnessed checkpoint covers ${size} records but the local log holds ${logSize}: records were removed` });
      continue;
    }
    const upTo = scanLog(dir, { checkpoints: [], stopAt: size });
    if (upTo.nextSeq < size || !upTo.frontier.root().equals(checkpoint.root) || upTo.head !== checkpoint.head) findings.push({ kind: 'fork', size, index, message: `the local records 0..${size - 1} do not hash to the witnessed checkpoint's root: the log was rewritten after the witness received it` });
    else findings.push({ kind: 'missing-checkpoint', size, index, message: `the witnessed checkpoint ${index ?? '-'} (size ${size}) is missing from the local checkpoints/ directory (its records are intact)` });
  }
  return { witnessed: witnessed.size, ignored, findings };
}

export function witnessExitCode(report: WitnessReport): number | undefined {
  const kinds = new Set(report.findings.map((finding) => finding.kind));
  if (kinds.has('fork')) return WitnessExit.Fork;
  if (kinds.has('truncated')) return WitnessExit.Truncated;
  if (kinds.has('missing-checkpoint')) return WitnessExit.MissingCheckpoint;
  return undefined;
}

/**
 * After a tamper restart (audit.startNewSegmentAfterTamper) the new chain would fork from the
 * mirror's copies of the old one: those are moved to <mirror>/superseded/<time>/, unchanged.
 */
export function supersedeMirror(mirrorDir: string, now: Date): string | undefined {
  if (!existsSync(mirrorDir)) return undefined;
  const names = readdirSync(mirrorDir).filter((name) => /^cp-\d{12}\.txt$/.test(name));
  if (names.length === 0) return undefined;
  const target = join(mirrorDir, 'superseded', now.toISOString().replace(/[:.]/g, '-'));
  mkdirSync(target, { recursive: true, mode: 0o700 });
  for (const name of names) renameSync(join(mirrorDir, name), join(target, name));
  return target;
}
