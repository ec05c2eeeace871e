import type { UpstreamBearer } from '../../credentials/index.js';
import { ErrorCode } from '../../pipeline/index.js';
import type { JsonRpcId, JsonRpcMessage } from '../jsonrpc.js';
import type { UpstreamChannel } from './channel.js';
import { withBearer } from './http.js';
import { SseParser, type SseEvent } from './sse-parser.js';

type Fetcher = (input: string | URL, init?: RequestInit) => Promise<Response>;

/**
 * A remote upstream over the deprecated HTTP+SSE transport (MCP 2024-11-05), for servers that
 * offer nothing newer: GET opens an event stream whose first `endpoint` event names the URL
 * to POST messages to; answers arrive as `message` events on the stream. Written here rather
 * than taken from the SDK so the gateway can hold its own lines: the endpoint must be on the
 * stream's origin (a server cannot send the session's messages, and its headers, elsewhere),
 * no event is buffered past the message cap, and no redirect is followed.
 */
export class SseChannel implements UpstreamChannel {
  onMessage: UpstreamChannel['onMessage'] = () => {};
  onProtocolViolation: UpstreamChannel['onProtocolViolation'] = () => {};
  onClose: UpstreamChannel['onClose'] = () => {};
  private closed = false;
  private readonly abort = new AbortController();
  private endpoint: URL | undefined;
  private endpointWaiter: { resolve: (url: URL) => void; reject: (error: Error) => void } | undefined;

  private constructor(
    private readonly url: URL,
    private readonly headers: Record<string, string>,
    private readonly fetcher: Fetcher,
    maxMessageBytes: number,
  ) {
    this.parser = new SseParser(maxMessageBytes, {
      onEvent: (event) => this.event(event),
      onOversize: (bytes) => this.onProtocolViolation('oversize', `an SSE event of more than ${maxMessageBytes} bytes (${bytes} seen)`, bytes),
    });
  }

  private readonly parser: SseParser;

  /** Opens the stream and waits for its endpoint; throws (and closes) when it is refused or late. */
  static async start(url: string, headers: Record<string, string>, options: { maxMessageBytes: number; timeoutMs: number; bearer?: UpstreamBearer }): Promise<SseChannel> {
    const fetcher: Fetcher = options.bearer === undefined ? (input, init) => fetch(input, init) : withBearer(options.bearer);
    const channel = new SseChannel(new URL(url), headers, fetcher, options.maxMessageBytes);
    try {
      await channel.open(options.timeoutMs);
      return channel;
    } catch (error) {
      await channel.close();
      throw error;
    }
  }

  send(message: JsonRpcMessage): boolean {
    if (this.closed || this.endpoint === undefined) return false;
    const id = 'id' in message && 'method' in message ? message.id : undefined;
    this.fetcher(this.endpoint, { method: 'POST', headers: { ...this.headers, 'content-type': 'application/json' }, body: JSON.stringify(message), redirect: 'error', signal: this.abort.signal })
      .then(async (response) => {
        await response.body?.cancel().catch(() => undefined);
        if (response.ok) return;
        this.failed(id, `the message endpoint answered HTTP ${response.status}`);
      })
      .catch((error: unknown) => {
        if (!this.closed) this.failed(id, error instanceof Error ? error.message : String(error));
      });
    return true;
  }

  async close(): Promise<void> {
    this.finish('closed by the gateway');
  }

  private async open(timeoutMs: number): Promise<void> {
    const timer = setTimeout(() => this.abort.abort(new Error(`no endpoint event within ${timeoutMs} ms`)), timeoutMs);
    try {
      const response = await this.fetcher(this.url, { method: 'GET', headers: { ...this.headers, accept: 'text/event-stream' }, redirect: 'error', signal: this.abort.signal });
      const type = response.headers.get('content-type') ?? '';
      if (!response.ok || !type.toLowerCase().startsWith('text/event-stream') || response.body === null) {
        await response.body?.cancel().catch(() => undefined);
        throw new Error(`GET ${this.url.href} answered HTTP ${response.status} (${type || 'no content type'}), not an SSE stream`);
      }
      const endpoint = new Promise<URL>((resolve, reject) => {
        this.endpointWaiter = { resolve, reject };
      });
      void this.read(response.body);
      this.endpoint = await endpoint;
    } catch (error) {
      const reason: unknown = this.abort.signal.aborted ? this.abort.signal.reason : error;
      throw reason instanceof Error ? reason : new Error(String(reason));
    } finally {
      clearTimeout(timer);
    }
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    const reader = body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        this.parser.push(decoder.decode(value, { stream: true }));
        if (this.closed) return;
      }
      this.finish('the SSE stream ended');
    } catch (error) {
      this.finish(`the SSE stream failed (${error instanceof Error ? error.message : String(error)})`);
    } finally {
      reader.releaseLock();
    }
  }

  private event(event: SseEvent): void {
    if (this.closed) return;
    if (event.event === 'endpoint') return this.endpointEvent(event.data);
    if (event.event !== 'message') return; // other event types carry nothing MCP defines
    if (this.endpoint === undefined) {
      this.onProtocolViolation('garbage', 'a message event before the endpoint event', event.bytes, event.data.slice(0, 200));
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(event.data);
    } catch {
      this.onProtocolViolation('garbage', 'an SSE message event that is not JSON', event.bytes, event.data.slice(0, 200));
      return;
    }
    this.onMessage(parsed, event.bytes);
  }

  private endpointEvent(data: string): void {
    const waiter = this.endpointWaiter;
    this.endpointWaiter = undefined;
    if (waiter === undefined) {
      // A second endpoint would move the session's messages mid-stream: refused, the first stays.
      this.onProtocolViolation('garbage', 'a second endpoint event (ignored; the first endpoint stays)', Buffer.byteLength(data));
      return;
    }
    let target: URL;
    try {
      target = new URL(data.trim(), this.url);
    } catch {
      waiter.reject(new Error(`the endpoint event is not a URL: ${JSON.stringify(data.slice(0, 100))}`));
      return;
    }
    if (target.origin !== this.url.origin) {
      this.onProtocolViolation('transport', `an endpoint on another origin (${target.origin}) refused`, Buffer.byteLength(data));
      waiter.reject(new Error(`the server's endpoint event points to another origin (${target.origin}, the stream is ${this.url.origin}); refused`));
      return;
    }
    waiter.resolve(target);
  }

  /** A message could not be delivered: a request fails now instead of at its timeout. */
  private failed(id: JsonRpcId | undefined, reason: string): void {
    this.onProtocolViolation('transport', `send failed: ${reason}`, 0);
    if (id !== undefined) this.onMessage({ jsonrpc: '2.0', id, error: { code: ErrorCode.UpstreamUnavailable, message: `upstream HTTP request failed: ${reason}` } }, 0);
  }

  private finish(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.endpointWaiter?.reject(new Error(`${reason} before the endpoint event`));
    this.endpointWaiter = undefined;
    this.abort.abort(new Error(reason));
    this.onClose(reason);
  }
}
