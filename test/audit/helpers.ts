import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, resolveAuditConfig, type AuditLogOptions, type DeepPartial, type AuditConfig } from '../../src/audit/index.js';

export function tempDir(prefix = 'bastion-audit-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function auditOptions(stateDir: string, overrides: DeepPartial<AuditConfig> = {}): AuditLogOptions {
  return resolveAuditConfig(overrides, stateDir);
}

/** Appends `count` request records from `writers` concurrent callers; returns the acknowledged seqs. */
export async function appendMany(log: AuditLog, count: number, writers = 16): Promise<number[]> {
  const acked: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: writers }, async (_, writer) => {
      while (next < count) {
        const index = next;
        next += 1;
        const { seq } = await log.append({ kind: 'request', method: 'tools/call', agent_id: `agent-${writer % 4}`, server: 'files', tool: index % 3 === 0 ? 'write' : 'read', decision: index % 7 === 0 ? 'deny' : 'allow', input: { path: `/tmp/file-${index}`, nested: { hash: 'x', prev: 'y', seq: 1 } } });
        acked.push(seq);
      }
    }),
  );
  return acked;
}
