import { test } from 'node:test';
import assert from 'node:assert/strict';
import { doctorReport } from '../../src/sandbox/index.js';

test('doctor starts a real program in the bwrap sandbox and reports seccomp, uid and capabilities', async () => {
  const report = await doctorReport();
  const endToEnd = report.checks.find((c) => c.control === 'bwrap end-to-end');
  assert.ok(endToEnd, 'no end-to-end check');
  assert.notEqual(endToEnd.status, 'missing', endToEnd.detail);
  assert.match(endToEnd.detail, /seccomp on, no_new_privs on, capabilities none/);
  assert.ok(report.usableBackends.includes('bwrap'));
  const cgroups = report.checks.find((c) => c.control === 'cgroups');
  assert.ok(cgroups && ['ok', 'degraded'].includes(cgroups.status));
  if (report.host.root) assert.doesNotMatch(endToEnd.detail, /uid 0,/);
});

test('doctor says when the oci runtime is missing instead of listing the backend as usable', async () => {
  const report = await doctorReport();
  const oci = report.checks.find((c) => c.control === 'oci (runc)');
  assert.equal(oci?.status === 'ok', report.usableBackends.includes('oci'));
});
