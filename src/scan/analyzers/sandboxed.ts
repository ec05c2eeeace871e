import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { EgressEvent, SandboxBackend, SandboxHandle } from '../../sandbox/index.js';

/** MCP over the stdio of a child the sandbox started (the SDK's stdio transport spawns its own). */
export class ChildStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private readonly buffer = new ReadBuffer();

  constructor(private readonly child: ChildProcessWithoutNullStreams) {}

  async start(): Promise<void> {
    this.child.stdout.on('data', (chunk: Buffer) => {
      this.buffer.append(chunk);
      for (;;) {
        let message: JSONRPCMessage | null;
        try {
          message = this.buffer.readMessage();
        } catch (error) {
          this.onerror?.(error as Error);
          continue;
        }
        if (message === null) break;
        this.onmessage?.(message);
      }
    });
    this.child.once('exit', () => this.onclose?.());
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (!this.child.stdin.writable) throw new Error('server stdin is closed');
    this.child.stdin.write(serializeMessage(message));
  }

  async close(): Promise<void> {
    this.child.stdin.end();
  }
}

/** Every process below `root` (the sandbox's bwrap and the server inside it), from /proc. */
export function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(name), ppid);
    } catch {
      // The process exited while we looked.
    }
  }
  const out = [root];
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of parent) if (out.includes(ppid) && !out.includes(pid)) { out.push(pid); grew = true; }
  }
  return out;
}

export interface SandboxedRun {
  handle: SandboxHandle;
  tracer: ChildProcess | undefined;
  egress: EgressEvent[];
  transport: ChildStdioTransport;
  stop(): Promise<void>;
}

/**
 * Starts the server in the sandbox, then attaches strace to the whole process tree (ptrace from
 * outside: the sandbox's seccomp filter forbids ptrace inside). Start-up syscalls before the attach
 * are not traced; every request the scanner sends is.
 */
export async function startSandboxed(backend: SandboxBackend, spec: Parameters<SandboxBackend['spawn']>[0], traceFile: string): Promise<SandboxedRun> {
  const handle = await backend.spawn(spec);
  const egress: EgressEvent[] = [];
  handle.events.on('egress', (event) => egress.push(event));
  await new Promise((resolve) => setTimeout(resolve, 300));
  const pids = descendants(handle.child.pid ?? -1);
  const tracer = spawn('strace', ['-f', '-s', '512', '-e', 'trace=file,network,process', '-e', 'signal=none', '-o', traceFile, ...pids.flatMap((p) => ['-p', String(p)])], { stdio: ['ignore', 'ignore', 'pipe'] });
  await waitForAttach(tracer, pids.length);
  return {
    handle,
    tracer,
    egress,
    transport: new ChildStdioTransport(handle.child),
    stop: async () => {
      tracer.kill('SIGINT');
      await new Promise((resolve) => { if (tracer.exitCode !== null) resolve(undefined); else tracer.once('close', resolve); });
      await handle.dispose();
    },
  };
}

function waitForAttach(tracer: ChildProcess, expected: number): Promise<void> {
  return new Promise((resolve) => {
    let attached = 0;
    const done = (): void => { clearTimeout(timer); resolve(); };
    const timer = setTimeout(done, 3000);
    tracer.stderr?.on('data', (chunk: Buffer) => {
      attached += (chunk.toString().match(/attached/g) ?? []).length;
      if (attached >= expected) done();
    });
    tracer.once('close', done);
  });
}
