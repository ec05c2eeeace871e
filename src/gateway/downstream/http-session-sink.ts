import type { ServerResponse } from 'node:http';
import type { JsonRpcId, JsonRpcMessage } from '../jsonrpc.js';
import type { SessionSink } from '../session.js';
import { serializeMessage } from '../lossless-id.js';
import { ClientOutbox } from './client-outbox.js';

/**
 * The answer to one POSTed request. It starts undecided: if the response is the first thing
 * to send, it goes out as one application/json body (the cheap, common case); if anything
 * related comes first (progress, a sampling request), it switches to an SSE stream.
 */
export class PendingHttpAnswer {
  private streaming = false;
  private done = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly onDone: () => void,
    private readonly outbox: ClientOutbox | undefined,
  ) {
    res.once('close', () => this.finish());
  }

  deliver(message: JsonRpcMessage, isFinal: boolean): boolean {
    if (this.done || this.res.destroyed) return false;
    const body = serializeMessage(message);
    if (!this.streaming && isFinal) {
      this.res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      this.res.end(body);
      this.finish();
      return true;
    }
    if (!this.streaming) {
      this.streaming = true;
      this.res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive' });
    }
    if (this.outbox !== undefined && !this.outbox.admit(message, this.res.writableLength)) return false;
    this.res.write(`event: message\ndata: ${body}\n\n`);
    if (isFinal) {
      this.res.end();
      this.finish();
    }
    return true;
  }

  /** Ends the answer without a response (the request was cancelled: the spec says none is sent). */
  abandon(): void {
    if (this.done || this.res.destroyed) return this.finish();
    if (!this.streaming) this.res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform' });
    this.res.end();
    this.finish();
  }

  /** Drops the connection with whatever it still queues (the client stopped reading). */
  destroy(): void {
    this.res.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.onDone();
  }
}

/** Messages held for a client whose GET stream is not open (upstreams talk during initialize). */
const MAX_HELD_MESSAGES = 100;

/** Routes a session's outgoing messages to the POST they belong to, or to the GET stream. */
export class HttpSessionSink implements SessionSink {
  private readonly answers = new Map<JsonRpcId, PendingHttpAnswer>();
  private standalone: ServerResponse | undefined;
  private keepAlive: NodeJS.Timeout | undefined;
  private held: JsonRpcMessage[] = [];
  private disconnected = false;

  /** `outbox` bounds what a client that stops reading can make the gateway hold (undefined: no bound, tests only). */
  constructor(private readonly outbox?: ClientOutbox) {}

  expect(id: JsonRpcId, res: ServerResponse): void {
    this.answers.set(id, new PendingHttpAnswer(res, () => this.answers.delete(id), this.outbox));
  }

  /** Whether a POST is still waiting for the answer to request `id`. */
  isExpecting(id: JsonRpcId): boolean {
    return this.answers.has(id);
  }

  get hasStandaloneStream(): boolean {
    return this.standalone !== undefined && !this.standalone.destroyed;
  }

  openStandalone(res: ServerResponse): void {
    this.standalone = res;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive' });
    res.write(': bastion stream open\n\n');
    this.keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 25_000);
    this.keepAlive.unref();
    res.once('close', () => {
      if (this.standalone === res) this.closeStandalone();
    });
    for (const message of this.held.splice(0)) res.write(`event: message\ndata: ${serializeMessage(message)}\n\n`);
  }

  send(message: JsonRpcMessage, related?: JsonRpcId): boolean {
    if (this.disconnected) return false;
    const isResponse = 'id' in message && !('method' in message);
    const key = isResponse ? (message.id ?? undefined) : related;
    const answer = key === undefined ? undefined : this.answers.get(key);
    if (answer !== undefined && answer.deliver(message, isResponse)) return true;
    if (isResponse) return false;
    if (!this.hasStandaloneStream) {
      // Hold what upstreams say while the client has no GET stream open (a roots/list during
      // initialize, or between reconnects), up to a bound; delivered when it (re)opens one.
      if (this.held.length >= MAX_HELD_MESSAGES) return false;
      this.held.push(message);
      return true;
    }
    const stream = this.standalone as ServerResponse;
    if (this.outbox !== undefined && !this.outbox.admit(message, stream.writableLength)) return false;
    stream.write(`event: message\ndata: ${serializeMessage(message)}\n\n`);
    return true;
  }

  /** Cuts every stream of a client that fell behind: what it has not read is dropped with them. */
  disconnect(): void {
    this.disconnected = true;
    this.held = [];
    this.closeStandalone(true);
    for (const answer of this.answers.values()) answer.destroy();
  }

  release(id: JsonRpcId): void {
    this.answers.get(id)?.abandon();
  }

  closeAll(): void {
    this.outbox?.flushReport();
    this.closeStandalone();
  }

  private closeStandalone(destroy = false): void {
    if (this.keepAlive !== undefined) clearInterval(this.keepAlive);
    this.keepAlive = undefined;
    if (destroy) this.standalone?.destroy();
    else if (this.standalone !== undefined && !this.standalone.writableEnded) this.standalone.end();
    this.standalone = undefined;
  }
}
