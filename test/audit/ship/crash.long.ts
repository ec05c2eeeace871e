import { test } from 'node:test';
import { tempDir } from '../../helpers/gateway.js';
import { crashWhileShipping } from './crash-run.js';

// Outside CI: node --test dist/test/audit/ship/crash.long.js (SHIP_CRASH_KILLS, default 25).
test('many kill -9 of bastion serve while shipping to rsyslog: nothing committed is lost', async (t) => {
  const dir = tempDir('bastion-ship-crash-long-');
  try {
    const figures = await crashWhileShipping(dir.path, Number(process.env['SHIP_CRASH_KILLS'] ?? 25));
    t.diagnostic(JSON.stringify(figures));
  } finally {
    dir.cleanup();
  }
});
