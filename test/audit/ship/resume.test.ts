import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog } from '../../../src/audit/index.js';
import { listCheckpoints, listSegments } from '../../../src/audit/layout.js';
import { resolveSinks } from '../../../src/audit/ship/index.js';
import { Shipper } from '../../../src/audit/ship/shipper.js';
import type { ShipItem } from '../../../src/audit/ship/source.js';
import type { SinkTransport } from '../../../src/audit/ship/transport.js';
import { appendMany, auditOptions, tempDir } from '../helpers.js';
import { committedLog } from './helpers.js';

/**
 * The shipper is the part under test, so its transport here only keeps what it is given, in
 * order (the network transports have their own tests against real receivers).
 */
class KeepingTransport implements SinkTransport {
  readonly acknowledges = true;
  readonly records: Array<{ seq: number; line: string }> = [];
  readonly checkpoints: number[] = [];
  deliver(items: ShipItem[]): Promise<undefined> {
    for (const item of items) {
      if (item.kind === 'record') this.records.push({ seq: item.seq, line: item.line });
      else this.checkpoints.push(item.size);
    }
    return Promise.resolve(undefined);
  }
  reset(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const SINK = resolveSinks([{ name: 'keep', type: 'webhook', url: 'http://127.0.0.1:9/unused', secret: { fromEnv: 'UNUSED' } }])[0];

async function shipAll(log: AuditLog, cursorDir: string): Promise<{ transport: KeepingTransport; shipper: Shipper; warnings: string[] }> {
  const transport = new KeepingTransport();
  const warnings: string[] = [];
  assert.ok(SINK);
  const shipper = new Shipper({ sink: SINK, transport, logDir: log.dir, logId: log.metadata.logId, cursorDir, logSize: () => log.size, pollMs: 50, onError: (error) => assert.fail(error), onRecovered: () => undefined, onWarning: (message) => warnings.push(message), onRejected: (rejection) => assert.fail(`no receiver here rejects records: ${JSON.stringify(rejection)}`) });
  shipper.start();
  await shipper.stop(20_000);
  return { transport, shipper, warnings };
}

describe('a sink cursor survives a tamper restart of the log (a new chain under the same log id)', () => {
  test('the new chain is shipped from seq 0, whole, though the old cursor pointed past its first records; a later resume ships nothing twice', async () => {
    const temp = tempDir('bastion-ship-resume-');
    try {
      const options = auditOptions(temp.dir, { checkpoint: { everyRecords: 20 }, rotation: { maxBytes: 16 * 1024 } });
      const cursorDir = join(temp.dir, 'audit-ship');
      let log = await AuditLog.open(options);
      await appendMany(log, 150, 4);
      const first = await shipAll(log, cursorDir);
      const oldSize = log.size;
      assert.equal(first.shipper.position.nextSeq, oldSize, 'the sink caught up with the first chain');
      await log.close();
      assert.ok(listSegments(options.dir).length > 1, 'the first chain spans several segments');

      // The checkpoints no longer verify (their signing key was replaced); the operator starts a new chain.
      unlinkSync(options.checkpoint.keyFile);
      log = await AuditLog.open({ ...options, startNewSegmentAfterTamper: true });
      assert.equal(log.recovery.tamperRestart, true);
      assert.equal(log.metadata.logId, first.shipper.position.logId, 'the new chain keeps the log id: the seq alone cannot tell the chains apart');
      // The new chain grows past the old cursor, so a cursor checked by seq alone would ship its tail only.
      await appendMany(log, 250, 4);
      assert.ok(log.size > oldSize);
      await log.flush();

      const second = await shipAll(log, cursorDir);
      const stored = committedLog(options.dir).lines;
      const shippedSeqs = second.transport.records.map((record) => record.seq);
      assert.equal(shippedSeqs[0], 0, 'shipping starts at the new chain\'s first record');
      assert.deepEqual(new Set(shippedSeqs), new Set(stored.keys()), 'every record of the new chain reached the sink');
      for (const record of second.transport.records) assert.equal(record.line, stored.get(record.seq), `record ${record.seq} is the new chain's, byte for byte`);
      assert.equal(second.shipper.snapshot().newChains, 1);
      assert.ok(second.warnings.some((message) => /new chain/.test(message)), 'the restart is reported');

      // An ordinary restart of the sink after that: its cursor matches the chain, nothing is sent again.
      await log.event('after');
      await log.flush();
      const third = await shipAll(log, cursorDir);
      assert.equal(third.shipper.snapshot().newChains, 0, 'a cursor into the current chain is not mistaken for a stale one');
      assert.ok(third.transport.records.length > 0 && third.transport.records.length < 10, `only the records appended since were shipped (got ${third.transport.records.length})`);
      assert.ok((third.transport.records[0]?.seq ?? 0) >= (second.shipper.position.nextSeq), 'the third run starts where the second stopped');
      await log.close();
    } finally {
      temp.cleanup();
    }
  });
});

describe('a sink stopping at shutdown', () => {
  test('waits for the last checkpoint note when it read the seal announcing it before the note was on disk', async () => {
    const temp = tempDir('bastion-ship-stop-');
    try {
      const options = auditOptions(temp.dir, { checkpoint: { everyRecords: 1000 } });
      const log = await AuditLog.open(options);
      await appendMany(log, 20, 2);
      await log.checkpoint();
      const last = listCheckpoints(options.dir).at(-1);
      assert.ok(last !== undefined && last.checkpoint.size === log.size, 'the log ends with a checkpoint');
      // The state the shipper can see for a moment: the seal synced, its note not yet written.
      const aside = `${last.path}.later`;
      renameSync(last.path, aside);
      const transport = new KeepingTransport();
      assert.ok(SINK);
      const shipper = new Shipper({ sink: SINK, transport, logDir: log.dir, logId: log.metadata.logId, cursorDir: join(temp.dir, 'audit-ship'), logSize: () => log.size, pollMs: 20, onError: (error) => assert.fail(error), onRecovered: () => undefined, onWarning: () => undefined, onRejected: () => assert.fail('nothing is rejected') });
      shipper.start();
      while (transport.records.length < log.size) await new Promise((resolve) => setTimeout(resolve, 10));
      setTimeout(() => renameSync(aside, last.path), 100);
      await shipper.stop(5_000);
      assert.deepEqual(transport.checkpoints.at(-1), last.checkpoint.size, 'the last checkpoint reached the sink');
      await log.close();
    } finally {
      temp.cleanup();
    }
  });
});
