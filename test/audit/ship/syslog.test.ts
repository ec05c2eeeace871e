import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, type TempDir } from '../../helpers/gateway.js';
import { makeCertificates, Rsyslog } from './rsyslog.js';
import { assertEverythingArrived, echoCalls, eventually, startShippingGateway } from './helpers.js';

describe('audit records and checkpoints reach a real rsyslog over TCP and TLS, across restarts of both', () => {
  let dir: TempDir;
  const started: Rsyslog[] = [];
  before(() => {
    dir = tempDir('bastion-ship-syslog-');
  });
  after(async () => {
    // A failed assertion must not leave an rsyslogd behind.
    for (const rsyslog of started) await rsyslog.stop();
    dir.cleanup();
  });

  test('plain TCP (RFC 6587 octet counting): nothing lost across an rsyslog restart and a Bastion restart', async () => {
    const base = join(dir.path, 'tcp');
    mkdirSync(join(base, 'rsyslog'), { recursive: true });
    const rsyslog = new Rsyslog(join(base, 'rsyslog'));
    started.push(rsyslog);
    await rsyslog.start();
    const sink = (): string => `    - { name: siem, type: syslog, host: 127.0.0.1, port: ${rsyslog.port}, confirmEveryRecords: 20, retryInitialMs: 50, retryMaxMs: 200 }\n`;
    let gateway = await startShippingGateway(base, sink());
    try {
      await echoCalls(gateway.url, 15, 'first');
      const shipping = gateway.bastion.shipping ?? assert.fail('shipping did not start');
      await eventually(() => shipping.stats()[0]?.lagRecords === 0, 'the sink to catch up');
      // rsyslog goes away while calls go on: they are answered, their records wait in the log.
      await rsyslog.stop();
      await echoCalls(gateway.url, 15, 'while-down');
      await eventually(() => (shipping.stats()[0]?.failures ?? 0) > 0, 'a failed delivery');
      assert.ok((shipping.stats()[0]?.lagRecords ?? 0) > 0, 'records wait while rsyslog is down');
      await rsyslog.start();
      await eventually(() => shipping.stats()[0]?.lagRecords === 0, 'the sink to catch up after rsyslog restarted');
    } finally {
      await gateway.bastion.close();
    }
    // Bastion restarts: the sink resumes from its cursor.
    gateway = await startShippingGateway(base, sink());
    try {
      await echoCalls(gateway.url, 10, 'after-restart');
      const stats = gateway.bastion.shipping?.stats()[0];
      assert.ok(stats !== undefined);
    } finally {
      await gateway.bastion.close();
    }
    await rsyslog.stop();
    const received = rsyslog.received();
    const outcome = assertEverythingArrived(join(base, 'state', 'audit'), received);
    assert.ok(outcome.records > 60, `the log holds the calls' records (${outcome.records})`);
    assert.ok(received.some((message) => message.msgid === 'checkpoint'), 'checkpoints are witnessed by the sink');
  });

  test('TLS (RFC 5425): records arrive exactly; a receiver whose certificate the CA did not sign gets nothing', async () => {
    const base = join(dir.path, 'tls');
    mkdirSync(join(base, 'rsyslog'), { recursive: true });
    mkdirSync(join(base, 'impostor'), { recursive: true });
    const trusted = makeCertificates(base, 'trusted');
    const untrusted = makeCertificates(base, 'untrusted');
    const rsyslog = new Rsyslog(join(base, 'rsyslog'), trusted);
    const impostor = new Rsyslog(join(base, 'impostor'), untrusted);
    started.push(rsyslog, impostor);
    await rsyslog.start();
    await impostor.start();
    const sinks = `    - { name: siem, type: syslog, host: 127.0.0.1, port: ${rsyslog.port}, tls: { caFile: ${trusted.ca} }, retryInitialMs: 50, retryMaxMs: 200 }\n    - { name: impostor, type: syslog, host: 127.0.0.1, port: ${impostor.port}, tls: { caFile: ${trusted.ca} }, retryInitialMs: 50, retryMaxMs: 200 }\n`;
    const gateway = await startShippingGateway(base, sinks);
    try {
      await echoCalls(gateway.url, 10, 'tls');
      const shipping = gateway.bastion.shipping ?? assert.fail('shipping did not start');
      await eventually(() => shipping.stats()[0]?.lagRecords === 0, 'the TLS sink to catch up');
      await eventually(() => (shipping.stats()[1]?.failures ?? 0) > 0, 'the impostor sink to fail');
      assert.equal(shipping.stats()[1]?.shipped, 0);
      const text = await gateway.bastion.metrics?.registry.metrics();
      assert.equal(text, undefined, 'no admin listener in this config');
    } finally {
      await gateway.bastion.close();
    }
    await rsyslog.stop();
    await impostor.stop();
    assertEverythingArrived(join(base, 'state', 'audit'), rsyslog.received());
    assert.deepEqual(impostor.received(), [], 'nothing reached a receiver the CA did not vouch for');
  });
});
