import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createBastion, type Bastion } from '../../../src/app/index.js';
import { listCheckpoints } from '../../../src/audit/layout.js';
import { readRecords } from '../../../src/audit/reader.js';
import { loadConfigText } from '../../../src/config/index.js';
import { silentLogger } from '../../../src/observability/index.js';
import { configYaml, firstText, httpClient, referenceServer, stdioServer } from '../../helpers/gateway.js';

/** A gateway with the reference 'everything' server, whose audit section ships to `sinksYaml`, in a state dir that outlives it. */
export async function startShippingGateway(baseDir: string, sinksYaml: string, auditExtra = '', listeners?: string): Promise<{ bastion: Bastion; url: string }> {
  const yaml = configYaml(stdioServer('everything', referenceServer('everything'), ['stdio']), `audit:\n  checkpoint: { everyRecords: 25 }\n${auditExtra}  sinks:\n${sinksYaml}`, listeners);
  writeFileSync(join(baseDir, 'bastion.yaml'), yaml);
  const loaded = loadConfigText(yaml, join(baseDir, 'bastion.yaml'), baseDir);
  const bastion = await createBastion({ loaded, logger: silentLogger(), version: '0.0.0-test' });
  return { bastion, url: await bastion.gateway.startHttp() };
}

export async function echoCalls(url: string, count: number, tag: string): Promise<void> {
  const client = await httpClient(url);
  try {
    for (let i = 0; i < count; i += 1) assert.equal(firstText(await client.callTool({ name: 'everything.echo', arguments: { message: `${tag}-${i}` } })), `Echo: ${tag}-${i}`);
  } finally {
    await client.close();
  }
}

/** Resolves once `condition` holds; the shipper's progress is only visible by looking. */
export async function eventually(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The stored record lines by seq, and the checkpoint notes by size, of a log directory. */
export function committedLog(auditDir: string): { lines: Map<number, string>; checkpoints: Map<number, string> } {
  const lines = new Map<number, string>();
  for (const { record, raw } of readRecords(auditDir)) lines.set(record.seq, raw);
  const checkpoints = new Map<number, string>();
  for (const file of listCheckpoints(auditDir)) checkpoints.set(file.checkpoint.size, readFileSync(file.path, 'utf8'));
  return { lines, checkpoints };
}

/**
 * Compares what a receiver got (payloads keyed by record seq, checkpoints by size) with the log:
 * every record arrived byte for byte, every checkpoint note arrived, nothing else arrived.
 * Returns the number of duplicates.
 */
export function assertEverythingArrived(auditDir: string, received: Array<{ seq?: number; payload: string }>): { duplicates: number; records: number } {
  const log = committedLog(auditDir);
  const seen = new Map<number, number>();
  const checkpoints = new Set<number>();
  for (const message of received) {
    if (message.seq !== undefined) {
      assert.equal(message.payload, log.lines.get(message.seq), `record ${message.seq} arrived as stored`);
      seen.set(message.seq, (seen.get(message.seq) ?? 0) + 1);
    } else {
      const { checkpoint } = JSON.parse(message.payload) as { checkpoint: { size: number; note: string } };
      assert.equal(checkpoint.note, log.checkpoints.get(checkpoint.size), `checkpoint ${checkpoint.size} arrived as signed`);
      checkpoints.add(checkpoint.size);
    }
  }
  const missing = [...log.lines.keys()].filter((seq) => !seen.has(seq));
  assert.deepEqual(missing, [], 'every committed record reached the receiver');
  assert.deepEqual([...log.checkpoints.keys()].filter((size) => !checkpoints.has(size)), [], 'every checkpoint reached the receiver');
  let duplicates = 0;
  for (const count of seen.values()) duplicates += count - 1;
  return { duplicates, records: log.lines.size };
}
