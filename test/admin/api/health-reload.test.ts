// The console's upstream health view follows a config reload: a server the reload added appears,
// one it removed disappears (the tracker reads the server.reload audit events on their way).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HealthTracker } from '../../../src/admin/api/health.js';

test('servers added and removed by a reload appear in and leave the health view', () => {
  const health = new HealthTracker(['kept', 'gone']);
  health.observe('server.reload', { server: 'new', action: 'start', reason: 'added' });
  health.observe('server.reload', { server: 'gone', action: 'drain', reason: 'removed' });
  assert.deepEqual(health.upstreamStates().map((state) => state.server).sort(), ['gone', 'kept', 'new'], 'a drained server is still there');
  health.observe('server.reload', { server: 'gone', action: 'stop', reason: 'removed' });
  health.observe('server.reload', { server: 'kept', action: 'stop', reason: 'changed' });
  assert.deepEqual(health.upstreamStates().map((state) => state.server).sort(), ['kept', 'new'], 'a changed server stays');
  health.observe('upstream.start', { server: 'new', pid: 1 });
  assert.equal(health.upstreamStates().find((state) => state.server === 'new')?.starts, 1);
});
