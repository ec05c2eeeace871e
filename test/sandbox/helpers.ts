// Shared by the sandbox tests and the benchmark: an MCP client transport over a sandboxed
// child's stdin/stdout (the SDK's stdio transport wants to spawn the process itself).
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

const require = createRequire(import.meta.url);

/** /work/main (the repository root): holds package.json ("type": "module") and node_modules. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const NODE_MODULES = join(REPO_ROOT, 'node_modules');
export const DIST = join(REPO_ROOT, 'dist');

export function hostileServer(): string {
  return fileURLToPath(new URL('../fixtures/servers/hostile-server.js', import.meta.url));
}

export function referenceServer(name: 'everything' | 'filesystem' | 'memory'): string {
  return join(dirname(require.resolve(`@modelcontextprotocol/server-${name}/package.json`)), 'dist', 'index.js');
}

/** What a compiled fixture needs to be readable inside the sandbox. */
export const FIXTURE_PACKAGE_DIRS = [join(REPO_ROOT, 'package.json'), DIST, NODE_MODULES];

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

export async function connectClient(child: ChildProcessWithoutNullStreams): Promise<Client> {
  const client = new Client({ name: 'sandbox-test', version: '1.0.0' });
  await client.connect(new ChildStdioTransport(child));
  return client;
}

export interface ToolOutcome {
  ok: boolean;
  detail: string;
  [key: string]: unknown;
}

/** Calls a hostile-server tool and parses the JSON outcome it reports. */
export async function attempt(client: Client, name: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<ToolOutcome> {
  const result = await client.callTool({ name, arguments: args }, undefined, { timeout: timeoutMs });
  const content = result.content as Array<{ type: string; text?: string }>;
  const text = content.find((c) => c.type === 'text')?.text;
  if (text === undefined) throw new Error(`tool ${name} returned no text: ${JSON.stringify(result)}`);
  return JSON.parse(text) as ToolOutcome;
}
