// The approval journal: pending approvals live in memory, so without this a gateway that dies
// (kill -9, OOM, power) would forget the calls that were waiting, and the audit log would never
// say what became of them. Every wait is written (and fsynced) here before an approver can see
// it, and its end after; at the next start the waits that never ended are handed back so the
// composition root records each as denied (`approval.interrupted`, reason gateway_restarted).
//
// One JSON line per change, in the state directory, one file per replica. The file is emptied
// whenever nothing waits, so it stays as small as the queue.
import { closeSync, existsSync, fdatasyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { PendingApproval } from './queue.js';

type JournalLine = { op: 'pending'; approval: PendingApproval } | { op: 'ended'; id: string; verdict: string };

/** The journal of one gateway (or replica) under `stateDir/approvals/`. */
export function journalPath(stateDir: string, replicaId: string | undefined): string {
  const name = replicaId === undefined ? 'pending.jsonl' : `pending-${replicaId.replace(/[^A-Za-z0-9._-]/g, '_')}.jsonl`;
  return join(stateDir, 'approvals', name);
}

export class ApprovalJournal {
  private constructor(
    readonly path: string,
    private readonly fd: number,
  ) {}

  /**
   * Opens the journal and returns the waits a previous process left open. Call `forget()` once
   * they are recorded in the audit log: a crash in between reports them again (twice rather
   * than never).
   */
  static open(path: string): { journal: ApprovalJournal; interrupted: PendingApproval[] } {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const interrupted = existsSync(path) ? unfinished(readFileSync(path, 'utf8')) : [];
    const fd = openSync(path, 'a', 0o600);
    return { journal: new ApprovalJournal(path, fd), interrupted };
  }

  /** Written and on disk before the call is shown to approvers; throws when it cannot be (the call is then denied). */
  pending(approval: PendingApproval): void {
    this.write({ op: 'pending', approval });
  }

  ended(id: string, verdict: string): void {
    this.write({ op: 'ended', id, verdict });
  }

  /** Empties the journal (nothing waits, or the interrupted waits are in the audit log). */
  forget(): void {
    ftruncateSync(this.fd, 0);
    fdatasyncSync(this.fd);
  }

  close(): void {
    closeSync(this.fd);
  }

  private write(line: JournalLine): void {
    writeSync(this.fd, `${JSON.stringify(line)}\n`);
    fdatasyncSync(this.fd);
  }
}

/** The waits with a `pending` line and no `ended` line; a torn or foreign line is skipped. */
function unfinished(text: string): PendingApproval[] {
  const open = new Map<string, PendingApproval>();
  for (const raw of text.split('\n')) {
    if (raw.trim() === '') continue;
    let line: unknown;
    try {
      line = JSON.parse(raw);
    } catch {
      continue; // the last line of a process killed mid-write
    }
    if (typeof line !== 'object' || line === null) continue;
    const entry = line as Partial<JournalLine> & { approval?: Partial<PendingApproval>; id?: unknown };
    if (entry.op === 'pending' && typeof entry.approval?.id === 'string') open.set(entry.approval.id, entry.approval as PendingApproval);
    else if (entry.op === 'ended' && typeof entry.id === 'string') open.delete(entry.id);
  }
  return [...open.values()];
}
