import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { hashToken } from '../../src/auth/index.js';
import { TEST_TOKEN, configYaml, firstText, httpClient, referenceServer, startGateway, stdioServer, type RunningGateway } from '../helpers/gateway.js';

const VIEWER = 'operator-viewer-token-0123456789';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function get(url: string, token?: string, method = 'GET'): Promise<{ status: number; body: string; type: string | null }> {
  const response = await fetch(url, { method, headers: token === undefined ? {} : { Authorization: `Bearer ${token}` } });
  return { status: response.status, body: await response.text(), type: response.headers.get('content-type') };
}

describe('the admin listener serves metrics and health to operators, apart from agents', () => {
  let running: RunningGateway;
  let admin: string;
  before(async () => {
    const port = await freePort();
    const listeners = `listeners:\n  http:\n    host: 127.0.0.1\n    port: 0\n  admin:\n    port: ${port}\n    tokens:\n      - { operator: grafana, role: viewer, sha256: ${hashToken(VIEWER)} }`;
    running = await startGateway(configYaml(stdioServer('everything', referenceServer('everything'), ['stdio']), '', listeners));
    admin = (await running.bastion.startAdmin()) ?? assert.fail('no admin listener');
  });
  after(() => running.stop());

  test('/metrics needs an operator token: none, a wrong one and an agent token are refused', async () => {
    assert.equal((await get(`${admin}/metrics`)).status, 401);
    assert.equal((await get(`${admin}/metrics`, 'not-a-real-operator-token-at-all')).status, 401);
    assert.equal((await get(`${admin}/metrics`, TEST_TOKEN)).status, 401, "an agent's MCP token opens nothing on the admin listener");
    const scraped = await get(`${admin}/metrics`, VIEWER);
    assert.equal(scraped.status, 200);
    assert.match(scraped.type ?? '', /^text\/plain/);
    assert.match(scraped.body, /^# TYPE bastion_requests_total counter$/m);
  });

  test('calls are counted by server, tool, agent and decision, with latency', async () => {
    const client = await httpClient(running.url);
    try {
      for (let i = 0; i < 3; i += 1) assert.equal(firstText(await client.callTool({ name: 'everything.echo', arguments: { message: `m${i}` } })), `Echo: m${i}`);
    } finally {
      await client.close();
    }
    const { body } = await get(`${admin}/metrics`, VIEWER);
    assert.match(body, /^bastion_requests_total\{method="tools\/call",server="everything",tool="echo",agent="alice",decision="allow"\} 3$/m);
    assert.match(body, /^bastion_request_duration_seconds_count\{method="tools\/call",server="everything",decision="allow"\} 3$/m);
    assert.match(body, /^bastion_upstream_duration_seconds_count\{server="everything"\} 3$/m);
    assert.match(body, /^bastion_audit_records \d+$/m);
    assert.match(body, /^bastion_audit_writer_on_main_thread 0$/m, 'a few calls: the writer thread writes the log');
  });


  test('/healthz and /readyz answer without a token; anything but GET is refused', async () => {
    assert.deepEqual(JSON.parse((await get(`${admin}/healthz`)).body), { status: 'ok' });
    const ready = await get(`${admin}/readyz`);
    assert.equal(ready.status, 200, ready.body);
    const checks = (JSON.parse(ready.body) as { checks: { name: string; ok: boolean }[] }).checks;
    assert.deepEqual(checks.map((check) => [check.name, check.ok]), [['listener', true], ['audit', true], ['limit-store', true], ['upstreams', true]]);
    assert.equal((await get(`${admin}/metrics`, VIEWER, 'POST')).status, 405);
    assert.equal((await get(`${admin}/nothing-here`, VIEWER)).status, 404);
  });

  test('a real Prometheus server scrapes /metrics with a bearer token and PromQL sees the calls', async () => {
    const work = join(running.dir.path, 'prometheus');
    mkdirSync(work);
    const target = new URL(admin).host;
    writeFileSync(
      join(work, 'prometheus.yml'),
      ['global:', '  scrape_interval: 1s', 'scrape_configs:', '  - job_name: bastion', '    authorization:', '      type: Bearer', `      credentials: ${VIEWER}`, '    static_configs:', `      - targets: ['${target}']`].join('\n'),
    );
    const port = await freePort();
    const prometheus: ChildProcess = spawn('prometheus', [`--config.file=${join(work, 'prometheus.yml')}`, `--storage.tsdb.path=${join(work, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
    try {
      const client = await httpClient(running.url);
      try {
        for (let i = 0; i < 2; i += 1) await client.callTool({ name: 'everything.echo', arguments: { message: 'scraped' } });
      } finally {
        await client.close();
      }
      const query = encodeURIComponent('sum(bastion_requests_total{job="bastion",method="tools/call",tool="echo",decision="allow"})');
      let value: string | undefined;
      for (let attempt = 0; attempt < 120 && value !== '5'; attempt += 1) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        const answer = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${query}`).then((response) => response.json() as Promise<{ data?: { result?: { value: [number, string] }[] } }>).catch(() => undefined);
        value = answer?.data?.result?.[0]?.value[1];
      }
      assert.equal(value, '5', 'Prometheus counted the 3 calls of the earlier test and these 2');
    } finally {
      prometheus.kill('SIGTERM');
    }
  });

  // Last: the calls here would change the counts the tests above read.
  test('calls one at a time move the audit log to the main thread, and the gauges say so', async () => {
    const client = await httpClient(running.url);
    try {
      for (let i = 0; i < 70; i += 1) assert.equal(firstText(await client.callTool({ name: 'everything.echo', arguments: { message: `one ${i}` } })), `Echo: one ${i}`);
    } finally {
      await client.close();
    }
    const { body } = await get(`${admin}/metrics`, VIEWER);
    assert.match(body, /^bastion_audit_writer_on_main_thread 1$/m);
    assert.match(body, /^bastion_audit_writer_moves 1$/m);
  });
});
