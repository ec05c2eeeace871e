import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileDurably } from '../storage/index.js';
import { createRedactor } from '../audit/redact.js';
import type { JsonValue } from '../audit/schema.js';

/**
 * The review store: outputs that output inspection withheld, kept (redacted) so an operator can
 * see what a server tried to send. One file per entry, written to a temporary name, fsynced and
 * renamed (a crash leaves either the whole entry or none); entry names start with the time, so
 * the oldest are dropped first when the count or byte cap is reached.
 */

export interface ReviewEntry {
  id: string;
  ts: string;
  server: string | null;
  /** The tool, prompt or resource as the client named it, or the server-to-client method. */
  subject: string;
  method: string;
  session_id: string | null;
  request_id: string | number | null;
  agent_id: string | null;
  reason: string;
  rule_ids: string[];
  findings: { ruleId: string; severity: string; title: string; evidence: string }[];
  /** The withheld answer, redacted; clipped to the per-entry cap. */
  withheld: JsonValue;
  truncated: boolean;
}

export interface ReviewStoreOptions {
  dir: string;
  maxEntries: number;
  maxTotalBytes: number;
  maxEntryBytes: number;
}

export const DEFAULT_REVIEW_LIMITS = { maxEntries: 500, maxTotalBytes: 64 * 1024 * 1024, maxEntryBytes: 256 * 1024 };

const ID_PATTERN = /^r[0-9a-z]{9}-[0-9a-f]{8}$/;

/** A fresh review id: `r` + the time in base 36 (sorts by age) + random hex. */
export function newReviewId(now = Date.now()): string {
  return `r${now.toString(36).padStart(9, '0')}-${randomBytes(4).toString('hex')}`;
}

export function isReviewId(id: string): boolean {
  return ID_PATTERN.test(id);
}

export type ReviewInput = Omit<ReviewEntry, 'id' | 'ts' | 'withheld' | 'truncated'> & { withheld: unknown };

export class ReviewStore {
  constructor(readonly options: ReviewStoreOptions) {}

  /** Stores one withheld output under `id`; returns the entry written. Throws if it cannot be written. */
  put(id: string, input: ReviewInput): ReviewEntry {
    const redactor = createRedactor();
    let withheld = redactor.json(input.withheld);
    let truncated = false;
    let text = JSON.stringify(withheld);
    if (text.length > this.options.maxEntryBytes) {
      withheld = `${text.slice(0, this.options.maxEntryBytes)}…`;
      truncated = true;
    }
    const entry: ReviewEntry = {
      ...input,
      findings: input.findings.map((finding) => ({ ...finding, evidence: redactor.text(finding.evidence).slice(0, 512), title: redactor.text(finding.title) })),
      reason: redactor.text(input.reason),
      id,
      ts: new Date().toISOString(),
      withheld,
      truncated,
    };
    text = `${JSON.stringify(entry)}\n`;
    writeFileDurably(join(this.options.dir, `${id}.json`), text, 0o600);
    this.prune();
    return entry;
  }

  /** Entries, oldest first (ids only and their size). */
  list(): { id: string; bytes: number }[] {
    let names: string[];
    try {
      names = readdirSync(this.options.dir);
    } catch {
      return [];
    }
    return names
      .filter((name) => name.endsWith('.json') && isReviewId(name.slice(0, -5)))
      .sort()
      .map((name) => ({ id: name.slice(0, -5), bytes: safeSize(join(this.options.dir, name)) }));
  }

  /** One entry, or undefined if there is none with that id (or it is unreadable). */
  get(id: string): ReviewEntry | undefined {
    if (!isReviewId(id)) return undefined;
    try {
      return JSON.parse(readFileSync(join(this.options.dir, `${id}.json`), 'utf8')) as ReviewEntry;
    } catch {
      return undefined;
    }
  }

  /** Drops the oldest entries past the count or byte cap, and leftovers of interrupted writes. */
  private prune(): void {
    for (const name of readdirSync(this.options.dir)) {
      if (name.includes('.tmp-') && !name.endsWith(`.tmp-${process.pid}`)) safeUnlink(join(this.options.dir, name));
    }
    const entries = this.list();
    let total = entries.reduce((sum, entry) => sum + entry.bytes, 0);
    let count = entries.length;
    for (const entry of entries) {
      if (count <= this.options.maxEntries && total <= this.options.maxTotalBytes) break;
      safeUnlink(join(this.options.dir, `${entry.id}.json`));
      count -= 1;
      total -= entry.bytes;
    }
  }
}

function safeSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function safeUnlink(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
