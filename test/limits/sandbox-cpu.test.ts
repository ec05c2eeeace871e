import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ErrorCode } from '../../src/pipeline/index.js';
import { hostCgroupLayout } from '../../src/sandbox/cgroups.js';
import { configYaml, fixture, httpClient, startGateway, stdioServer, type RunningGateway } from '../helpers/gateway.js';
import { auditRecords, call } from './helpers.js';

// The only limits test that needs the sandbox: CPU and memory figures come from the bwrap
// backend's cgroups. Everything else runs with `sandbox: { backend: none }`.
describe('CPU budgets and memory/runaway breakers from the sandbox accounting (bwrap)', () => {
  let gw: RunningGateway;
  let client: Client;
  let accounting = false;

  before(async () => {
    const servers = ['up', 'hog', 'spin'].map((name) => stdioServer(name, fixture('limits-server'))).join('');
    gw = await startGateway(
      configYaml(
        servers,
        `sandbox: { backend: bwrap }
quotas:
  cpuBudgets:
    - { name: burn-budget, scope: tool, match: { server: up, tool: burn }, cpuMs: 300, windowMs: 3600000 }
  breakers:
    - { name: hog-memory, scope: server, match: { server: hog }, maxMemoryBytes: 209715200, openMs: 600000, sampleMs: 20 }
    - { name: spin-runaway, scope: tool, match: { server: spin, tool: burn }, maxCallCpuMs: 300, openMs: 600000, sampleMs: 20 }
`,
      ),
    );
    client = await httpClient(gw.url);
    // Start each server's process (one per session) so that every later measurement has a baseline.
    for (const server of ['up', 'hog', 'spin']) assert.equal((await call(client, `${server}.echo`)).ok, true);
    accounting = gw.bastion.sandboxes.cpuTimeMs('up') !== undefined && gw.bastion.sandboxes.memoryBytes('hog') !== undefined;
    // As root on a host with a cgroup hierarchy (CI: v1) the figures must be there; only a host
    // without cgroups, or a run without root, takes the documented fallback checked below.
    const layout = hostCgroupLayout();
    const cgroupsUsable = process.getuid?.() === 0 && (layout.version === 1 || (layout.version === 2 && (layout.v2?.controllers.length ?? 0) > 0));
    if (cgroupsUsable) assert.ok(accounting, 'cgroups are usable here, so the sandbox must report CPU and memory figures');
  });

  /** Without figures the limit cannot fire: the call goes through and the gap is an audit event. */
  async function unmeasuredOnRecord(server: string): Promise<void> {
    await gw.bastion.audit.flush();
    const servers = auditRecords(gw.bastion.audit.dir)
      .filter((record) => record.event === 'limits.unmeasured')
      .map((record) => record.info?.['server']);
    assert.ok(servers.includes(server), `limits.unmeasured for ${server} in ${JSON.stringify(servers)}`);
  }

  after(async () => {
    await client?.close();
    await gw?.stop();
  });

  test('a tool that spent its CPU budget is refused until the window frees it; other tools are not', async () => {
    if (!accounting) {
      assert.equal((await call(client, 'up.burn', { ms: 1 })).ok, true);
      return unmeasuredOnRecord('up');
    }
    assert.equal((await call(client, 'up.burn', { ms: 200 })).ok, true, '~200 of 300 ms');
    assert.equal((await call(client, 'up.burn', { ms: 200 })).ok, true, 'still under budget when it started');
    const refused = await call(client, 'up.burn', { ms: 200 });
    assert.equal(refused.code, ErrorCode.RateLimited);
    assert.equal(refused.data?.['reason'], 'cpu_budget_exhausted');
    assert.equal(refused.data?.['limit'], 'burn-budget');
    assert.ok(Number(refused.data?.['usedMs']) >= 400, `used ${String(refused.data?.['usedMs'])} ms as measured by the cgroup`);
    const retry = Number(refused.data?.['retryAfterMs']);
    assert.ok(retry > 0 && retry <= 3_600_000);
    assert.equal((await call(client, 'up.echo')).ok, true);
  });

  test('a server over its memory threshold opens its breaker and the call in flight is aborted', async () => {
    if (!accounting) return unmeasuredOnRecord('hog');
    const aborted = await call(client, 'hog.alloc', { mb: 300, hang: true });
    assert.equal(aborted.code, ErrorCode.CircuitOpen);
    assert.equal(aborted.data?.['aborted'], true);
    assert.match(aborted.message ?? '', /memory/);
    const next = await call(client, 'hog.echo');
    assert.equal(next.code, ErrorCode.CircuitOpen, 'the server stays open');
    assert.equal(next.data?.['limit'], 'hog-memory');
  });

  test('a runaway call (CPU over maxCallCpuMs) opens the breaker and is aborted', async () => {
    if (!accounting) {
      assert.equal((await call(client, 'spin.burn', { ms: 1 })).ok, true);
      return unmeasuredOnRecord('spin');
    }
    const aborted = await call(client, 'spin.burn', { ms: 4000 });
    assert.equal(aborted.code, ErrorCode.CircuitOpen);
    assert.match(aborted.message ?? '', /runaway/);
    assert.equal((await call(client, 'spin.burn', { ms: 1 })).code, ErrorCode.CircuitOpen);
  });

  test('the transitions are audited with their cause', async () => {
    await gw.bastion.audit.flush();
    const causes = auditRecords(gw.bastion.audit.dir)
      .filter((record) => record.event === 'limits.breaker' && record.info?.['to'] === 'open')
      .map((record) => `${String(record.info?.['breaker'])}:${String(record.info?.['cause'])}`)
      .sort();
    assert.deepEqual(causes, accounting ? ['hog-memory:memory', 'spin-runaway:runaway'] : []);
  });
});
