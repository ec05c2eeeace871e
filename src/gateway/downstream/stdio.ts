import type { Readable, Writable } from 'node:stream';
import { ErrorCode, type Identity } from '../../pipeline/index.js';
import { LineFramer } from '../framing.js';
import { errorResponse, parseError, type JsonRpcMessage } from '../jsonrpc.js';
import { GatewaySession, type GatewayRuntime } from '../session.js';

/**
 * Serves one client over stdin/stdout (the client launched Bastion). stdout carries only
 * protocol messages; everything else goes to stderr.
 */
export class StdioListener {
  readonly session: GatewaySession;
  private readonly framer: LineFramer;
  private readonly closed: Promise<void>;

  constructor(
    runtime: GatewayRuntime,
    private readonly identity: Identity,
    private readonly input: Readable = process.stdin,
    private readonly output: Writable = process.stdout,
  ) {
    this.session = new GatewaySession(runtime, { send: (message) => this.write(message) }, { transport: 'stdio' });
    const maxBytes = largestRequestCap(runtime);
    this.framer = new LineFramer(
      maxBytes,
      (line, bytes) => this.receive(line, bytes),
      (bytes) => this.write(errorResponse(null, { code: ErrorCode.RequestTooLarge, message: `message of at least ${bytes} bytes is over the ${maxBytes}-byte request cap and was discarded` })),
    );
    this.closed = new Promise((resolve) => {
      input.on('end', () => resolve());
      input.on('close', () => resolve());
    });
    input.on('data', (chunk: Buffer) => this.framer.push(chunk));
  }

  /** Resolves when the client closes stdin: the signal to shut down. */
  whenClientGone(): Promise<void> {
    return this.closed;
  }

  close(): Promise<void> {
    return this.session.close();
  }

  private receive(line: string, bytes: number): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (error) {
      this.write(parseError(error instanceof Error ? error.message : 'invalid JSON'));
      return;
    }
    this.session.handle(parsed, bytes, this.identity);
  }

  private write(message: JsonRpcMessage): boolean {
    if (!this.output.writable) return false;
    this.output.write(`${JSON.stringify(message)}\n`);
    return true;
  }
}

/** The largest request any server or tool allows: the most a transport ever buffers. */
export function largestRequestCap(runtime: GatewayRuntime): number {
  const { config } = runtime;
  const caps = [config.limits.maxRequestBytes];
  for (const server of Object.values(config.servers)) {
    if (server.limits?.maxRequestBytes !== undefined) caps.push(server.limits.maxRequestBytes);
    for (const tool of Object.values(server.tools ?? {})) if (tool.limits?.maxRequestBytes !== undefined) caps.push(tool.limits.maxRequestBytes);
  }
  return Math.max(...caps);
}
