import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AuditLog, requestRecord, resolveAuditConfig, verifyLog, verifyLogParallel, type AuditFields } from '../../src/audit/index.js';
import { encodeLine } from '../../src/audit/canonical.js';
import { listSegments } from '../../src/audit/layout.js';
import { CallContext, success } from '../../src/pipeline/index.js';
import { tempDir } from './helpers.js';

// A log written by the build before the audit path was reworked (fixtures/v2-log/generate.mjs,
// run with that build), with its keys: the current code must read, re-encode and extend it byte for byte.
const FIXTURE = fileURLToPath(new URL('../../../test/audit/fixtures/v2-log/', import.meta.url));

function storedLines(dir: string): Buffer[] {
  const lines: Buffer[] = [];
  for (const segment of listSegments(dir)) {
    const data = readFileSync(segment.path);
    for (let start = 0, end = data.indexOf(0x0a); end >= 0; start = end + 1, end = data.indexOf(0x0a, start)) lines.push(data.subarray(start, end + 1));
  }
  return lines;
}

test('a log written before the rework verifies, re-encodes to the same bytes, and takes new records under the same keys', async () => {
  const temp = tempDir();
  try {
    cpSync(FIXTURE, temp.dir, { recursive: true });
    // Git keeps no file modes beyond the executable bit: the keys are checked out readable by others,
    // which the log rightly refuses. A deployment's keys are private, so the copy's are made so.
    chmodSync(join(temp.dir, 'keys'), 0o700);
    for (const key of ['audit-mac.key', 'audit-signing-key.pem']) chmodSync(join(temp.dir, 'keys', key), 0o600);
    const dir = join(temp.dir, 'audit');
    assert.equal(verifyLog(dir).status, 'clean');
    assert.equal((await verifyLogParallel(dir, { workers: 2 })).status, 'clean');
    const before = storedLines(dir);
    assert.ok(before.length > 40, `${before.length} lines in the fixture`);
    // Every stored line, rebuilt from its fields by today's encoder, is the same bytes (record hash included).
    for (const line of before) {
      const { hash, seq, prev, schema, ts, ...fields } = JSON.parse(line.toString('utf8')) as AuditFields & { hash: string; seq: number; prev: string; schema: string; ts: string };
      assert.equal(schema, 'bastion.audit/2');
      const encoded = encodeLine(fields, ts, seq, prev);
      assert.equal(encoded.hash, hash);
      assert.ok(encoded.bytes.equals(line), `seq ${seq} re-encodes differently:\n${encoded.bytes.toString()}\n${line.toString()}`);
    }
    // The same call digests as the fixture's (keyed by the same log key), and the extended log verifies.
    const first = JSON.parse((before.find((line) => line.includes('"request_id":0,')) as Buffer).toString('utf8')) as AuditFields;
    const log = await AuditLog.open(resolveAuditConfig({ appendOnly: 'off' }, temp.dir));
    const ctx = new CallContext({ requestId: 0, method: 'tools/call', params: { name: 'files.read', arguments: { text: 'hello', n: 1 } }, session: { sessionId: 's-1', transport: 'stdio', protocolVersion: '2025-06-18' }, identity: { agentId: 'agent-0', tokenFingerprint: 'fp:1a2b', method: 'stdio' }, requestBytes: 100, limits: { timeoutMs: 1000, maxOutputBytes: 65536, maxRequestBytes: 65536 }, signal: new AbortController().signal });
    ctx.target = { server: 'files', name: 'read' };
    const fields = requestRecord(ctx, success({ content: [{ type: 'text', text: 'result 0 ☃' }] }), { arguments: 'truncated', outputs: 'full', maxChars: 200 }, (text) => log.digestText(text));
    assert.equal(fields.args_digest, first.args_digest);
    assert.equal(fields.output_digest, first.output_digest);
    assert.deepEqual(fields.input, first.input);
    await log.append(fields);
    await log.close();
    const after = storedLines(dir);
    assert.ok(after.length > before.length);
    before.forEach((line, index) => assert.ok(line.equals(after[index] as Buffer), `line ${index} unchanged`));
    assert.equal(verifyLog(dir).status, 'clean');
  } finally {
    temp.cleanup();
  }
});
