// Protocol fuzzer harness (fuzz-stdio.test.ts, fuzz-http.test.ts): random, malformed and hostile frames at a real gateway process, over stdio
// and over HTTP. It asserts that the gateway never dies, answers every request that carries an
// id, keeps its RSS bounded, and still serves a legitimate call afterwards.
//   FUZZ_SEED=<n>     replay a run (the seed is printed on every run)
//   FUZZ_FRAMES=<n>   frames per transport (default 20000 over each transport)
//   FUZZ_HTTP_FRAMES=<n> frames over HTTP only
//   FUZZ_HEAP_MB=<n>  run the gateway with --max-old-space-size=<n>
import { after } from 'node:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASTION_BIN, configYaml, fixture, stdioServer, tempDir } from '../helpers/gateway.js';

export const SEED = Number(process.env['FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
export const FRAMES = Number(process.env['FUZZ_FRAMES'] ?? 20_000);
/** HTTP costs a request per frame; 20,000 (the bound) take about 30 s on an idle 2-core machine. */
export const HTTP_FRAMES = Number(process.env['FUZZ_HTTP_FRAMES'] ?? process.env['FUZZ_FRAMES'] ?? 20_000);
export const HEAP_MB = process.env['FUZZ_HEAP_MB'];
/** Generous: the gateway idles at about 80 MB; a leak per frame would pass this quickly. */
export const RSS_LIMIT_MB = Number(process.env['FUZZ_RSS_LIMIT_MB'] ?? 400);
export const dir = tempDir('bastion-fuzz-');
after(() => dir.cleanup());

export const key = (id: unknown): string => `${typeof id}:${String(id)}`;

export interface Gateway {
  child: ChildProcess;
  stderr: () => string;
  exited: () => { code: number | null; signal: string | null } | undefined;
  peakRssMb: () => number;
  stop: () => void;
}

export function startFuzzGateway(name: string, listeners: string, args: string[]): Gateway {
  const file = join(dir.path, `${name}.yaml`);
  writeFileSync(file, configYaml(stdioServer('paced', fixture('paced-server')), 'limits: { timeoutMs: 30000 }\naudit: { mode: async }', listeners));
  const node = HEAP_MB === undefined ? [] : [`--max-old-space-size=${HEAP_MB}`];
  const child = spawn(process.execPath, [...node, BASTION_BIN, 'serve', '--config', file, ...args], { cwd: dir.path, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let exited: { code: number | null; signal: string | null } | undefined;
  let peak = 0;
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-200_000);
  });
  child.once('exit', (code, signal) => {
    exited = { code, signal };
  });
  const sampler = setInterval(() => {
    try {
      const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0);
      peak = Math.max(peak, Math.round(kb / 1024));
    } catch {
      // the process is gone; `exited` says how
    }
  }, 100);
  const stop = (): void => {
    clearInterval(sampler);
    if (exited === undefined) child.kill('SIGKILL');
  };
  // A file that runs past the runner's timeout is ended with SIGTERM and never reaches its
  // finally, and an HTTP gateway does not end with its stdin: without this it outlives the file
  // and loads the rest of the run. After stopping it, the signal does what it would have done.
  process.once('exit', stop);
  process.once('SIGTERM', () => {
    stop();
    process.kill(process.pid, 'SIGTERM');
  });
  return { child, stderr: () => stderr, exited: () => exited, peakRssMb: () => peak, stop };
}

export async function until(condition: () => boolean, boundMs: number): Promise<boolean> {
  const deadline = Date.now() + boundMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  return condition();
}

