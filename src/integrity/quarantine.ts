// Quarantine as persistent state: a definition held back (changed since it was approved, new,
// different from its signed manifest, or with findings the config quarantines) stays held across
// reconnects and restarts until an operator approves or rejects it. Records carry the old and new
// definition hashes and a field-by-field diff. The store sits behind a small interface so that
// replicas can later share it (Redis) and an admin console can decide from the web.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { writeFileDurably } from '../storage/index.js';
import type { Definition, FieldChange } from './hashlock.js';

/** What a quarantine is about: a listed definition, or a server's `instructions` text. */
export type QuarantineKind = 'tools' | 'prompts' | 'resources' | 'resourceTemplates' | 'instructions';

export type QuarantineCause = 'changed' | 'added' | 'differs-from-manifest' | 'findings';

export type QuarantineStatus = 'held' | 'approved' | 'rejected';

export interface QuarantineFinding {
  ruleId: string;
  severity: string;
  field: string;
}

export interface QuarantineRecord {
  /** `q-` and 16 hex digits, derived from server, kind, name and new digest: the same change gets the same id everywhere. */
  id: string;
  server: string;
  kind: QuarantineKind;
  name: string;
  cause: QuarantineCause;
  status: QuarantineStatus;
  createdAt: string;
  decidedAt?: string;
  /** The approved (pinned or signed) definition's digest, when there is one. */
  oldDigest?: string;
  newDigest: string;
  oldDefinition?: Definition;
  newDefinition: Definition;
  diff: FieldChange[];
  findings: QuarantineFinding[];
}

export type QuarantineInput = Omit<QuarantineRecord, 'id' | 'status' | 'createdAt' | 'decidedAt'>;

/**
 * Where quarantines live. Synchronous on purpose: the gateway consults it on the list path, which
 * must not wait on I/O; a shared implementation keeps a local mirror and publishes its writes.
 */
export interface QuarantineStore {
  /** Holds a definition, or returns the record that already exists for the same change. */
  hold(input: QuarantineInput): QuarantineRecord;
  /** The record for this exact definition (by digest), if any. */
  find(server: string, kind: QuarantineKind, name: string, digest: string): QuarantineRecord | undefined;
  /** true when some record names this definition, whatever its digest (a cheap pre-check). */
  mentions(server: string, kind: QuarantineKind, name: string): boolean;
  get(id: string): QuarantineRecord | undefined;
  list(): QuarantineRecord[];
  decide(id: string, status: 'approved' | 'rejected'): QuarantineRecord;
  /** Changes whenever any record changes, here or in another process; verdicts cached by it stay correct. */
  version(): string;
}

export const QUARANTINE_FILE = 'quarantine.json';

export function quarantineId(server: string, kind: QuarantineKind, name: string, newDigest: string): string {
  return `q-${createHash('sha256').update([server, kind, name, newDigest].join('\u0000')).digest('hex').slice(0, 16)}`;
}

const nameKey = (server: string, kind: string, name: string): string => `${server}\u0000${kind}\u0000${name}`;

/** Keeps records in memory only (tests, and the base of the file store). */
export class MemoryQuarantineStore implements QuarantineStore {
  protected records = new Map<string, QuarantineRecord>();
  protected byName = new Map<string, Set<string>>();
  protected generation = 0;

  hold(input: QuarantineInput): QuarantineRecord {
    const id = quarantineId(input.server, input.kind, input.name, input.newDigest);
    const existing = this.records.get(id);
    if (existing !== undefined) return existing;
    const record: QuarantineRecord = { ...input, id, status: 'held', createdAt: new Date().toISOString() };
    this.put(record);
    this.changed();
    return record;
  }

  find(server: string, kind: QuarantineKind, name: string, digest: string): QuarantineRecord | undefined {
    return this.records.get(quarantineId(server, kind, name, digest));
  }

  mentions(server: string, kind: QuarantineKind, name: string): boolean {
    return this.byName.has(nameKey(server, kind, name));
  }

  get(id: string): QuarantineRecord | undefined {
    return this.records.get(id);
  }

  list(): QuarantineRecord[] {
    return [...this.records.values()].sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : 1));
  }

  decide(id: string, status: 'approved' | 'rejected'): QuarantineRecord {
    const record = this.records.get(id);
    if (record === undefined) throw new Error(`no quarantine ${id}; bastion quarantine list shows them`);
    const decided: QuarantineRecord = { ...record, status, decidedAt: new Date().toISOString() };
    this.put(decided);
    this.changed();
    return decided;
  }

  version(): string {
    return String(this.generation);
  }

  protected put(record: QuarantineRecord): void {
    this.records.set(record.id, record);
    const key = nameKey(record.server, record.kind, record.name);
    let ids = this.byName.get(key);
    if (ids === undefined) this.byName.set(key, (ids = new Set()));
    ids.add(record.id);
  }

  protected changed(): void {
    this.generation += 1;
  }
}

interface QuarantineFileShape {
  version: 1;
  records: QuarantineRecord[];
}

/**
 * One JSON file in the state directory, rewritten whole on every change (temporary file, fsync,
 * rename, fsync of the directory), so a crash leaves either the old or the new file. Another
 * process (the CLI) may write it; the file's identity is checked before each read so its
 * decisions are seen.
 */
export class FileQuarantineStore extends MemoryQuarantineStore {
  private seen = '';
  /** When the file's identity was last checked (ms, monotonic). */
  private checkedAt = Number.NEGATIVE_INFINITY;

  constructor(
    readonly file: string,
    /**
     * The list path (version, find) looks at the file at most this often: a decision another
     * process writes takes effect within this time, and a burst of new sessions costs no
     * synchronous disk access each. Writes and the operator's reads (list, get, decide) always look.
     */
    private readonly recheckMs = 250,
  ) {
    super();
    this.reload();
  }

  static inDirectory(dir: string): FileQuarantineStore {
    return new FileQuarantineStore(join(dir, QUARANTINE_FILE));
  }

  override hold(input: QuarantineInput): QuarantineRecord {
    this.reload();
    return super.hold(input);
  }

  override find(server: string, kind: QuarantineKind, name: string, digest: string): QuarantineRecord | undefined {
    this.reloadIfDue();
    return super.find(server, kind, name, digest);
  }

  override get(id: string): QuarantineRecord | undefined {
    this.reload();
    return super.get(id);
  }

  override list(): QuarantineRecord[] {
    this.reload();
    return super.list();
  }

  override decide(id: string, status: 'approved' | 'rejected'): QuarantineRecord {
    this.reload();
    return super.decide(id, status);
  }

  override version(): string {
    this.reloadIfDue();
    return this.seen;
  }

  protected override changed(): void {
    super.changed();
    this.write();
  }

  private identity(): string {
    const stat = statSync(this.file, { throwIfNoEntry: false });
    return stat === undefined ? 'absent' : `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
  }

  private reloadIfDue(): void {
    if (performance.now() - this.checkedAt >= this.recheckMs) this.reload();
  }

  /** Reads the file again when it changed since the last read or write. A damaged file throws: fail closed. */
  private reload(): void {
    const identity = this.identity();
    if (identity === this.seen) {
      this.checkedAt = performance.now();
      return;
    }
    this.checkedAt = Number.NEGATIVE_INFINITY;
    this.records = new Map();
    this.byName = new Map();
    if (identity !== 'absent') {
      let parsed: QuarantineFileShape;
      try {
        parsed = JSON.parse(readFileSync(this.file, 'utf8')) as QuarantineFileShape;
      } catch (error) {
        throw new Error(`${this.file}: not valid JSON (${(error as Error).message}); restore it from a backup: it holds the quarantined definitions`, { cause: error });
      }
      if (parsed?.version !== 1 || !Array.isArray(parsed.records)) throw new Error(`${this.file}: not a Bastion quarantine file (expected {"version": 1, "records": [...]})`);
      for (const record of parsed.records) this.put(record);
    }
    this.seen = identity;
    // Only after a good read: a damaged file keeps throwing on every use (fail closed).
    this.checkedAt = performance.now();
  }

  private write(): void {
    writeFileDurably(this.file, `${JSON.stringify({ version: 1, records: super.list() } satisfies QuarantineFileShape, null, 2)}\n`, 0o600);
    this.seen = this.identity();
  }
}

export const quarantineFileExists = (dir: string): boolean => existsSync(join(dir, QUARANTINE_FILE));
