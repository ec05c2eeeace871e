// Real parts for the replica tests: Bastion processes started with the CLI (so kill -9 is a real
// crash), HAProxy from Debian with the shipped deploy/haproxy/haproxy.cfg, and a stats frontend of
// the test's own to wait until HAProxy sees every replica up. Everything on 127.0.0.1.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BASTION_BIN } from './gateway.js';

export const HAPROXY = '/usr/sbin/haproxy';
export const HAPROXY_CONFIG = fileURLToPath(new URL('../../../deploy/haproxy/haproxy.cfg', import.meta.url));

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Replica {
  id: string;
  url: string;
  /** host:port of its MCP listener. */
  address: string;
  child: ChildProcess;
  /** What it wrote to stderr (its logs), for failure messages. */
  output: string[];
  exited: Promise<void>;
}

/** Starts `bastion serve --config <path>` and resolves once it logs its listening URL. */
export async function startReplica(id: string, configPath: string): Promise<Replica> {
  const child = spawn(process.execPath, [BASTION_BIN, 'serve', '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, BASTION_LOG_LEVEL: 'info' } });
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => {
      output.push(line);
      const match = /"url":"(http:[^"]+)"/.exec(line);
      if (match?.[1] !== undefined && line.includes('gateway listening')) resolve(match[1]);
    });
    void exited.then(() => reject(new Error(`replica ${id} exited before listening:\n${output.join('\n')}`)));
  });
  return { id, url, address: new URL(url).host, child, output, exited };
}

export async function stopReplica(replica: Replica, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (replica.child.exitCode !== null || replica.child.signalCode !== null) return;
  replica.child.kill(signal);
  await replica.exited;
}

export interface Balancer {
  url: string;
  child: ChildProcess;
  /** Resolves when HAProxy reports the given servers UP (and the others DOWN when `down` is given). */
  waitFor(up: readonly string[], down?: readonly string[]): Promise<void>;
  stop(): Promise<void>;
}

/** HAProxy with the shipped config (env-driven addresses) plus a stats frontend for the test. */
export async function startBalancer(dir: string, port: number, replicas: Record<string, string>, path: string): Promise<Balancer> {
  const statsPort = await freePort();
  const stats = join(dir, 'haproxy-stats.cfg');
  writeFileSync(stats, `frontend test-stats\n    bind 127.0.0.1:${statsPort}\n    stats enable\n    stats uri /stats\n`);
  const env = { ...process.env, BASTION_LB_BIND: `127.0.0.1:${port}`, BASTION_A_ADDR: replicas['a'] ?? '', BASTION_B_ADDR: replicas['b'] ?? '' };
  const child = spawn(HAPROXY, ['-db', '-f', HAPROXY_CONFIG, '-f', stats], { stdio: ['ignore', 'ignore', 'pipe'], env });
  const output: string[] = [];
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) => output.push(line));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const status = async (): Promise<Map<string, string>> => {
    const response = await fetch(`http://127.0.0.1:${statsPort}/stats;csv`);
    const rows = (await response.text()).split('\n').map((line) => line.split(','));
    return new Map(rows.filter((row) => row[0] === 'bastion').map((row) => [row[1] ?? '', row[17] ?? '']));
  };
  const waitFor = async (up: readonly string[], down: readonly string[] = []): Promise<void> => {
    for (let attempt = 0; attempt < 200; attempt += 1) {
      if (child.exitCode !== null) throw new Error(`haproxy exited:\n${output.join('\n')}`);
      const states = await status().catch(() => new Map<string, string>());
      if (up.every((name) => states.get(name) === 'UP') && down.every((name) => states.get(name)?.startsWith('DOWN') === true)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`haproxy did not report ${up.join(', ')} up${down.length > 0 ? ` and ${down.join(', ')} down` : ''}:\n${output.join('\n')}`);
  };
  return {
    url: `http://127.0.0.1:${port}${path}`,
    child,
    waitFor,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Polls `probe` until it returns a value (not undefined), at most `attempts` times 100 ms apart. */
export async function eventually<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, attempts = 100): Promise<T> {
  for (let attempt = 0; attempt < attempts; attempt += 1) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
