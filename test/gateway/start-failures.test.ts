import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { configYaml, fixture, httpClient, startGateway, stdioServer } from '../helpers/gateway.js';
import { auditRecords } from '../helpers/audit.js';

const node = realpathSync(process.execPath);

/** Live node processes (inside or outside a sandbox) whose argv carries `marker`. */
function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (!argv.includes(marker)) continue;
      if (readlinkSync(`/proc/${entry}/exe`) !== node) continue;
      const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1];
      if (state !== 'Z') pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

test('a sandboxed server whose initialize fails is reaped on every retry: no process is left after 30 s, and upstream.down is aggregated', { timeout: 90_000 }, async () => {
  const marker = `--marker=${randomBytes(6).toString('hex')}`;
  const gw = await startGateway(
    configYaml(stdioServer('badinit', fixture('runtime-hostile-server'), ['--bad-init', marker]), 'sandbox: { backend: bwrap }\nupstream: { restartBackoffMs: 100, maxBackoffMs: 1000 }'),
  );
  try {
    const client = await httpClient(gw.url);
    let most = 0;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      most = Math.max(most, processesWith(marker).length);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await gw.bastion.audit.flush();
    const records = auditRecords(gw.bastion.audit.dir);
    const downs = records.filter((record) => record.event === 'upstream.down');
    // Let a start that is under way finish its handshake and be reaped.
    let left = processesWith(marker);
    for (let wait = 0; wait < 20 && left.length > 0; wait += 1) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      left = processesWith(marker);
    }
    assert.ok(most <= 1, `at most one copy should run at a time, saw ${most}`);
    assert.ok(left.length <= 1, `processes left: ${left.join(', ')}`);
    assert.ok(downs.length >= 1 && downs.length <= 2, `upstream.down should be aggregated, got ${downs.length} records`);
    assert.match(String(downs[0]?.info?.['reason']), /unsupported protocol version/);
    process.stdout.write(`# failed-initialize retries: max ${most} process(es) at once, ${left.length} left, ${downs.length} upstream.down record(s)\n`);
    await client.close();
  } finally {
    await gw.stop();
  }
  assert.deepEqual(processesWith(marker), [], 'no process after the gateway stopped');
});
