import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { AuditLog, resolveAuditConfig, verifyLog, verifyLogParallel, type AuditLogOptions, type DeepPartial, type AuditConfig, type VerifyOptions, type VerifyReport } from '../../src/audit/index.js';
import { CallContext } from '../../src/pipeline/index.js';
import { removeTree } from '../helpers/tmp.js';

export function tempDir(prefix = 'bastion-audit-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => removeTree(dir) };
}

/**
 * The options of a test log. audit.appendOnly is off unless a test asks for it: most tests here
 * rewrite segments and checkpoints to play the attacker who already got past the attributes
 * (verification must catch them anyway). append-only.test.ts covers the attributes themselves,
 * and the gateway tests run with the default (auto).
 */
export function auditOptions(stateDir: string, overrides: DeepPartial<AuditConfig> = {}): AuditLogOptions {
  return resolveAuditConfig({ appendOnly: 'off', ...overrides }, stateDir);
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

/**
 * Verifies with the one-thread and the worker-thread verifier (small ranges, so range joins are
 * exercised) and insists they agree on everything they report.
 */
export async function verifyBoth(dir: string, options: VerifyOptions = {}, runs: ReadonlyArray<{ workers: number; chunkBytes: number }> = [{ workers: 2, chunkBytes: 16 * 1024 }]): Promise<VerifyReport> {
  const single = verifyLog(dir, options);
  for (const run of runs) {
    const parallel = await verifyLogParallel(dir, { ...options, ...run });
    assert.deepEqual(summary(parallel), summary(single), `the parallel verifier (${run.workers} threads, ${run.chunkBytes}-byte ranges) reports exactly what the one-thread verifier reports`);
  }
  return single;
}

function summary(report: VerifyReport): unknown {
  const { scan } = report;
  return { status: report.status, problem: report.problem, records: scan.records, firstSeq: scan.firstSeq, nextSeq: scan.nextSeq, head: scan.head, frontier: scan.frontier.toJSON(), matched: scan.checkpointsMatched, skipped: scan.checkpointsSkipped, retention: scan.startedAfterRetention };
}

/** A finished tools/call's context, as the audit guard sees it (request `requestId`, arguments `args`). */
export function callContext(requestId: number, args: Record<string, unknown>): CallContext {
  const ctx = new CallContext({
    requestId,
    method: 'tools/call',
    params: { name: 'files.read', arguments: args, _meta: { taskId: `task-${requestId}` } },
    session: { sessionId: 'session-1', transport: 'http', protocolVersion: '2025-06-18' },
    identity: { agentId: 'ci-bot', tokenFingerprint: 'fp:1a2b3c4d', method: 'oauth', subject: 'alice@example.com' },
    requestBytes: 120,
    limits: { timeoutMs: 1000, maxOutputBytes: 65536, maxRequestBytes: 65536 },
    signal: new AbortController().signal,
  });
  ctx.target = { server: 'files', name: 'read', calledAs: 'read_file' };
  return ctx;
}
