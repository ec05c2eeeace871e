import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configYaml, firstText, fixture, httpClient, referenceServer, startGateway, stdioServer } from '../helpers/gateway.js';
import { auditRecords } from '../helpers/audit.js';

const MiB = 1024 * 1024;

test('a server flooding notifications is held to its rate: excess dropped and audited once per burst, list_changed coalesced, memory bounded, other servers answer', { timeout: 120_000 }, async () => {
  const gw = await startGateway(
    configYaml(stdioServer('flood', fixture('runtime-hostile-server'), [], '    limits: { timeoutMs: 60000 }\n') + stdioServer('everything', referenceServer('everything'), ['stdio']), 'upstream: { notifications: { perSecond: 100, burst: 200 } }'),
  );
  const client = await httpClient(gw.url);
  try {
    let received = 0;
    let listChanged = 0;
    client.fallbackNotificationHandler = async (notification) => {
      received += 1;
      if (notification.method === 'notifications/tools/list_changed') listChanged += 1;
    };
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    }, 50);
    const started = Date.now();
    const storm = client.callTool({ name: 'flood.storm', arguments: { ms: 5000 } }, undefined, { timeout: 60_000 });
    // Other servers keep answering while the flood runs.
    const echoes: number[] = [];
    while (Date.now() - started < 4500) {
      const t0 = Date.now();
      assert.equal(firstText(await client.callTool({ name: 'everything.echo', arguments: { message: 'still here' } })), 'Echo: still here');
      echoes.push(Date.now() - t0);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const sent = Number(firstText(await storm));
    const elapsedS = (Date.now() - started) / 1000;
    await new Promise((resolve) => setTimeout(resolve, 2500)); // the drop burst ends and is reported
    clearInterval(sampler);
    await gw.bastion.audit.flush();
    const drops = auditRecords(gw.bastion.audit.dir).filter((record) => record.event === 'upstream.notifications_dropped' && record.info?.['server'] === 'flood');
    const dropped = drops.reduce((sum, record) => sum + Number(record.info?.['dropped'] ?? 0) + Number(record.info?.['coalesced'] ?? 0), 0);
    echoes.sort((a, b) => a - b);
    process.stdout.write(`# notification flood: server sent ${sent} in ${elapsedS.toFixed(1)} s, client received ${received} (${listChanged} list_changed), ${drops.length} drop record(s) for ${dropped} dropped or coalesced; test-process RSS ${Math.round(rssBefore / MiB)} -> peak ${Math.round(rssPeak / MiB)} MiB; other server echo p50 ${echoes[Math.floor(echoes.length / 2)]} ms, max ${echoes[echoes.length - 1]} ms over ${echoes.length} calls\n`);
    assert.ok(sent > 5000, `the fixture should flood (sent ${sent})`);
    // Rate 100/s with a burst of 200 (plus one coalesced list_changed per window): far below what was sent.
    assert.ok(received <= 200 + 100 * (elapsedS + 2) + 100, `received ${received}`);
    assert.ok(listChanged >= 1, 'list_changed still reaches the client');
    assert.ok(drops.length >= 1 && drops.length <= 3, `one audit event per burst, got ${drops.length}`);
    assert.ok(dropped >= sent - received - 10, `drop records account for ${dropped} of ${sent - received}`);
    assert.ok(rssPeak - rssBefore < 200 * MiB, `RSS grew by ${Math.round((rssPeak - rssBefore) / MiB)} MiB`);
  } finally {
    await client.close();
    await gw.stop();
  }
});

test('progress floods are coalesced: the client gets the newest progress, not every one', async () => {
  const gw = await startGateway(configYaml(stdioServer('flood', fixture('runtime-hostile-server')), 'upstream: { notifications: { perSecond: 50, burst: 20 } }'));
  const client = await httpClient(gw.url);
  try {
    const seen: number[] = [];
    const result = await client.callTool({ name: 'flood.progress-storm', arguments: { count: 3000 } }, undefined, { onprogress: (progress) => seen.push(progress.progress), timeout: 30_000 });
    assert.equal(firstText(result), '3000');
    assert.ok(seen.length < 200, `the client saw ${seen.length} progress notifications`);
    for (let i = 1; i < seen.length; i += 1) assert.ok((seen[i] ?? 0) > (seen[i - 1] ?? 0), 'progress only moves forward');
  } finally {
    await client.close();
    await gw.stop();
  }
});
