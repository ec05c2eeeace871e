import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir } from '../../helpers/gateway.js';
import { crashWhileShipping } from './crash-run.js';

// A few kills in CI; crash.long.ts runs many (figures in docs/audit.md).
test('kill -9 of bastion serve while shipping to rsyslog at load: every committed record reaches rsyslog (duplicates allowed and counted)', async (t) => {
  const dir = tempDir('bastion-ship-crash-');
  try {
    const figures = await crashWhileShipping(dir.path, 2);
    t.diagnostic(`kills ${figures.kills}, records ${figures.records}, duplicates ${figures.duplicates}, calls answered ${figures.callsAnswered}`);
    assert.ok(figures.callsAnswered >= 50, 'the load ran before each kill');
  } finally {
    dir.cleanup();
  }
});
