import type { Readable, Writable } from 'node:stream';
import { ErrorCode, type Identity } from '../../pipeline/index.js';
import { LineFramer } from '../framing.js';
import { classify, errorResponse, parseError, type JsonRpcMessage } from '../jsonrpc.js';
import { GatewaySession, type GatewayRuntime, type SessionSummary } from '../session.js';
import { largestRequestCap } from '../limits.js';
import { parseMessage, serializeMessage } from '../lossless-id.js';
import { ClientOutbox, DEFAULT_OUTBOX_LIMITS } from './client-outbox.js';
import { DEFAULT_STATELESS_OPTIONS, StatelessFront } from '../stateless/front.js';
import { isStatelessMessage, serveStatelessMessage } from '../stateless/stdio.js';

/**
 * Serves one client over stdin/stdout (the client launched Bastion). stdout carries only
 * protocol messages; everything else goes to stderr.
 */
export class StdioListener {
  readonly session: GatewaySession;
  private readonly framer: LineFramer;
  private readonly closed: Promise<void>;
  private corked = false;
  private readonly outbox: ClientOutbox;
  /** A client of the stateless 2026-07-28 revision is served here instead of by `session`. */
  readonly stateless: StatelessFront;

  constructor(
    runtime: GatewayRuntime,
    private readonly identity: Identity,
    private readonly input: Readable = process.stdin,
    private readonly output: Writable = process.stdout,
  ) {
    this.session = new GatewaySession(runtime, { send: (message) => this.write(message) }, { transport: 'stdio' });
    this.stateless = new StatelessFront(runtime, { ...DEFAULT_STATELESS_OPTIONS, transport: 'stdio', maxContextsPerAgent: 2, maxContexts: 2 });
    this.outbox = new ClientOutbox(DEFAULT_OUTBOX_LIMITS, {
      onDropped: (count) => runtime.events('client.notifications_dropped', { session_id: this.session.sessionId, agent: identity.agentId, count, transport: 'stdio' }),
      onOverflow: (queuedBytes) => {
        // The one client stopped reading stdout: end as if it had closed stdin.
        runtime.logger.warn({ agent: identity.agentId, queuedBytes }, 'the stdio client stopped reading: shutting down');
        runtime.events('client.disconnected', { session_id: this.session.sessionId, agent: identity.agentId, reason: 'slow_client', queued_bytes: queuedBytes, transport: 'stdio' });
        input.destroy();
      },
    });
    const maxBytes = largestRequestCap(runtime.config);
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
    runtime.events('session.created', { session_id: this.session.sessionId, agent: identity.agentId, remote: null, transport: 'stdio' });
  }

  /** The one stdio session and its stateless contexts, as the admin API lists them. */
  sessionSummaries(): SessionSummary[] {
    return [this.session.summary('session', this.identity.agentId), ...this.stateless.contextSummaries()];
  }

  /** Resolves when the client closes stdin: the signal to shut down. */
  whenClientGone(): Promise<void> {
    return this.closed;
  }

  /**
   * Lets requests in flight finish (a client may write and close stdin at once), closes the
   * session, then makes sure every answer has left the process.
   */
  async close(): Promise<void> {
    this.outbox.flushReport();
    await Promise.all([this.session.drain(5000), this.stateless.drain(5000)]);
    await Promise.all([this.session.close(), this.stateless.close()]);
    this.session.runtime.events('session.closed', { session_id: this.session.sessionId, agent: this.identity.agentId, reason: 'client_closed', calls: this.session.requestCount, transport: 'stdio' });
    if (this.corked) this.flush();
    await new Promise<void>((resolve) => {
      if (!this.output.writable) resolve();
      else this.output.write('', () => resolve());
    });
  }

  private receive(line: string, bytes: number): void {
    let parsed: unknown;
    try {
      parsed = parseMessage(line);
    } catch (error) {
      this.write(parseError(error instanceof Error ? error.message : 'invalid JSON'));
      return;
    }
    const classified = classify(parsed);
    if (isStatelessMessage(classified, this.session.initialized)) return serveStatelessMessage(this.stateless, classified, bytes, this.identity, (message) => this.write(message));
    this.session.handle(parsed, bytes, this.identity);
  }

  /** Corked and flushed once per event-loop turn, like the upstream side: one write for a burst. */
  private write(message: JsonRpcMessage): boolean {
    if (!this.output.writable || !this.outbox.admit(message, this.output.writableLength)) return false;
    if (!this.corked) {
      this.corked = true;
      this.output.cork();
      setImmediate(this.flush);
    }
    this.output.write(`${serializeMessage(message)}\n`);
    return true;
  }

  private readonly flush = (): void => {
    this.corked = false;
    this.output.uncork();
  };
}
