// Deciding a quarantine, shared by `bastion quarantine approve|reject` and the admin API, so both
// apply the same rules: a definition that contradicts its signed manifest cannot be approved by an
// operator (only its publisher can change that), and approving a changed or new definition of a
// locked server pins it in the hash lock.
import { existsSync } from 'node:fs';
import type { LoadedConfig } from '../config/index.js';
import { digestJson } from './digest.js';
import { DEFINITION_KINDS, readLock, writeLock, type DefinitionKind } from './hashlock.js';
import type { QuarantineRecord, QuarantineStore } from './quarantine.js';
import { resolveFrom } from './trust.js';

/** Why a quarantine cannot be decided as asked (unknown id, or a manifest mismatch to approve). */
export class QuarantineDecisionError extends Error {
  override name = 'QuarantineDecisionError';
  constructor(
    message: string,
    readonly kind: 'not-found' | 'not-allowed',
  ) {
    super(message);
  }
}

export interface QuarantineDecision {
  record: QuarantineRecord;
  /** What the decision did besides the status change (pinned in the lock, or why not). */
  note: string;
}

export function decideQuarantine(loaded: LoadedConfig, store: QuarantineStore, id: string, status: 'approved' | 'rejected'): QuarantineDecision {
  const record = store.get(id);
  if (record === undefined) throw new QuarantineDecisionError(`no quarantine ${id}; bastion quarantine list shows them`, 'not-found');
  if (status === 'approved' && record.cause === 'differs-from-manifest') {
    throw new QuarantineDecisionError(`${id}: the definition differs from the signed manifest of '${record.server}'; only the publisher can change that (sign a new manifest, then bastion lock --update ${record.server})`, 'not-allowed');
  }
  const note = status === 'approved' ? pinInLock(loaded, record) : 'the pinned definition stays; the live one remains refused';
  return { record: store.decide(id, status), note };
}

/** Pins an approved definition in the hash lock, when the server has a lock entry. Returns what it did. */
function pinInLock(loaded: LoadedConfig, record: QuarantineRecord): string {
  const lockPath = resolveFrom(loaded.baseDir, loaded.config.integrity.hashlockFile);
  if (!existsSync(lockPath)) return 'no hash lock exists; the approval is kept in the quarantine store';
  const lock = readLock(lockPath);
  const entry = lock.servers[record.server];
  if (entry === undefined) return `the hash lock has no entry for '${record.server}'; the approval is kept in the quarantine store`;
  if (record.cause === 'findings') return 'approved despite the scanner findings (kept in the quarantine store)';
  const pinned = { digest: digestJson(record.newDefinition, lock.algorithm), definition: record.newDefinition };
  if (record.kind === 'instructions') entry.instructions = pinned;
  else if ((DEFINITION_KINDS as readonly string[]).includes(record.kind)) entry[record.kind as DefinitionKind][record.name] = pinned;
  else return 'plain resources are not pinned; the approval is kept in the quarantine store';
  entry.lockedAt = new Date().toISOString();
  writeLock(lockPath, lock);
  return `pinned in ${lockPath}`;
}
