import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { BASTION_BIN, configYaml, httpClient, referenceServer, stdioServer } from '../../helpers/gateway.js';
import { Rsyslog } from './rsyslog.js';
import { assertEverythingArrived, eventually, startShippingGateway } from './helpers.js';

/**
 * kill -9 of a real `bastion serve` process while agents call tools and the audit log ships to a
 * real rsyslog; after the last restart every committed record must have reached rsyslog.
 */

export interface CrashFigures {
  kills: number;
  records: number;
  duplicates: number;
  callsAnswered: number;
}

const LOAD_CLIENTS = 2;

function sinkYaml(port: number): string {
  return `    - { name: siem, type: syslog, host: 127.0.0.1, port: ${port}, confirmEveryRecords: 40, retryInitialMs: 50, retryMaxMs: 300 }\n`;
}

async function serve(base: string, yaml: string): Promise<{ url: string; child: ChildProcess }> {
  const path = join(base, 'bastion.yaml');
  writeFileSync(path, yaml);
  const child = spawn(process.execPath, [BASTION_BIN, 'serve', '--config', path], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, BASTION_LOG_LEVEL: 'info' } });
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
      log += `${line}\n`;
      const match = /"url":"([^"]+)"/.exec(line);
      if (match?.[1] !== undefined) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`bastion serve exited with ${String(code)}:\n${log}`)));
  });
  return { url, child };
}

/** Calls until `calls` answers came back, then kill -9 while the load goes on; resolves with the answers counted. */
async function loadAndKill(url: string, child: ChildProcess, calls: number): Promise<number> {
  const clients: Client[] = await Promise.all(Array.from({ length: LOAD_CLIENTS }, () => httpClient(url)));
  let answered = 0;
  let killed = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await Promise.all(
    clients.map(async (client, index) => {
      for (let n = 0; !killed; n += 1) {
        try {
          await client.callTool({ name: 'everything.echo', arguments: { message: `c${index}-${n}` } });
          answered += 1;
        } catch {
          break;
        }
        if (answered >= calls && !killed) {
          killed = true;
          child.kill('SIGKILL');
        }
      }
    }),
  );
  await exited;
  await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
  return answered;
}

export async function crashWhileShipping(dir: string, kills: number): Promise<CrashFigures> {
  const rsyslog = new Rsyslog(join(dir, 'rsyslog'));
  mkdirSync(join(dir, 'rsyslog'), { recursive: true });
  await rsyslog.start();
  try {
    const yaml = configYaml(stdioServer('everything', referenceServer('everything'), ['stdio']), `audit:\n  checkpoint: { everyRecords: 25 }\n  sinks:\n${sinkYaml(rsyslog.port)}`);
    let callsAnswered = 0;
    for (let kill = 0; kill < kills; kill += 1) {
      const { url, child } = await serve(dir, yaml);
      callsAnswered += await loadAndKill(url, child, 25 + Math.floor(Math.random() * 30));
    }
    // The last restart, in this process so that the sink's lag can be watched.
    const gateway = await startShippingGateway(dir, sinkYaml(rsyslog.port));
    try {
      const shipping = gateway.bastion.shipping ?? assert.fail('shipping did not start');
      await eventually(() => shipping.stats()[0]?.lagRecords === 0, 'the sink to catch up after the last restart', 60_000);
    } finally {
      await gateway.bastion.close();
    }
    await rsyslog.stop();
    const outcome = assertEverythingArrived(join(dir, 'state', 'audit'), rsyslog.received());
    return { kills, records: outcome.records, duplicates: outcome.duplicates, callsAnswered };
  } finally {
    await rsyslog.stop();
  }
}
