// Fetches a server's live definitions with the official SDK client, for `bastion lock`. The
// gateway does not use this: it compares what its own upstream connections list.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Readable, Writable } from 'node:stream';
import type { Definition, LiveDefinitions } from './hashlock.js';

export type LiveServerSpec =
  | { transport: 'stdio'; command: string; args?: string[]; env?: Record<string, string>; cwd?: string }
  | { transport: 'http'; url: string; headers?: Record<string, string>; legacySse?: boolean };

/** A server that lists more pages than this is refused rather than followed forever. */
const MAX_PAGES = 100;

async function paged(fetchPage: (cursor: string | undefined) => Promise<{ items: Definition[]; nextCursor?: string | undefined }>): Promise<Definition[]> {
  const items: Definition[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const result = await fetchPage(cursor);
    items.push(...result.items);
    if (result.nextCursor === undefined) return items;
    cursor = result.nextCursor;
  }
  throw new Error(`the server listed more than ${MAX_PAGES} pages`);
}

function transportFor(spec: LiveServerSpec): Transport {
  if (spec.transport === 'http' && spec.legacySse === true) return new SSEClientTransport(new URL(spec.url), { requestInit: { headers: spec.headers ?? {} } });
  if (spec.transport === 'http') return new StreamableHTTPClientTransport(new URL(spec.url), { requestInit: { headers: spec.headers ?? {} } });
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && (key === 'PATH' || key === 'HOME')) env[key] = value;
  return new StdioClientTransport({ command: spec.command, args: spec.args ?? [], env: { ...env, ...(spec.env ?? {}) }, ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }), stderr: 'ignore' });
}

/** Lists every tool, prompt and resource template of a client already connected. */
export async function listDefinitions(client: Client): Promise<LiveDefinitions> {
  const capabilities = client.getServerCapabilities() ?? {};
  const tools = capabilities.tools === undefined ? [] : await paged(async (cursor) => {
    const page = await client.listTools(cursor === undefined ? {} : { cursor });
    return { items: page.tools as Definition[], nextCursor: page.nextCursor };
  });
  const prompts = capabilities.prompts === undefined ? [] : await paged(async (cursor) => {
    const page = await client.listPrompts(cursor === undefined ? {} : { cursor });
    return { items: page.prompts as Definition[], nextCursor: page.nextCursor };
  });
  const resourceTemplates = capabilities.resources === undefined ? [] : await paged(async (cursor) => {
    const page = await client.listResourceTemplates(cursor === undefined ? {} : { cursor });
    return { items: page.resourceTemplates as Definition[], nextCursor: page.nextCursor };
  });
  const instructions = client.getInstructions();
  return { tools, prompts, resourceTemplates, ...(typeof instructions === 'string' && instructions !== '' ? { instructions } : {}) };
}

/** A process someone else started (e.g. inside the Bastion sandbox), spoken to over its stdio. */
export interface StdioProcess {
  stdin: Writable;
  stdout: Readable;
  once(event: 'exit', listener: () => void): unknown;
}

/** MCP stdio framing over an already running process; closing ends its stdin, the owner kills it. */
export class ProcessStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private readonly buffer = new ReadBuffer();

  constructor(private readonly child: StdioProcess) {}

  start(): Promise<void> {
    this.child.stdout.on('data', (chunk: Buffer) => {
      this.buffer.append(chunk);
      try {
        for (let message = this.buffer.readMessage(); message !== null; message = this.buffer.readMessage()) this.onmessage?.(message);
      } catch (error) {
        this.onerror?.(error as Error);
      }
    });
    this.child.once('exit', () => this.onclose?.());
    return Promise.resolve();
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      this.child.stdin.write(serializeMessage(message), (error) => (error ? reject(error) : resolve()));
    });
  }

  close(): Promise<void> {
    this.child.stdin.end();
    this.onclose?.();
    return Promise.resolve();
  }
}

/** Starts (stdio), reaches (http) or talks to a running process, lists its definitions and disconnects. */
export async function fetchLiveDefinitions(spec: LiveServerSpec | { transport: 'process'; process: StdioProcess }, timeoutMs = 30_000): Promise<LiveDefinitions> {
  const client = new Client({ name: 'bastion-lock', version: '1' }, { capabilities: {} });
  const timer = setTimeout(() => void client.close(), timeoutMs);
  try {
    await client.connect(spec.transport === 'process' ? new ProcessStdioTransport(spec.process) : transportFor(spec), { timeout: timeoutMs });
    return await listDefinitions(client);
  } finally {
    clearTimeout(timer);
    await client.close();
  }
}
