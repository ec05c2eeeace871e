import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { JsonRpcMessage } from '../jsonrpc.js';
import type { UpstreamChannel } from './channel.js';

/**
 * A remote upstream over Streamable HTTP, through the official SDK's client transport.
 * The headers are the ones configured for this server (already resolved from secrets); a
 * client's own token is never among them.
 */
export class HttpChannel implements UpstreamChannel {
  onMessage: UpstreamChannel['onMessage'] = () => {};
  onProtocolViolation: UpstreamChannel['onProtocolViolation'] = () => {};
  onClose: UpstreamChannel['onClose'] = () => {};
  private closed = false;

  private constructor(private readonly transport: StreamableHTTPClientTransport) {
    transport.onmessage = (message) => {
      const bytes = Buffer.byteLength(JSON.stringify(message));
      this.onMessage(message, bytes);
    };
    transport.onerror = (error) => this.onProtocolViolation('transport', `HTTP transport error: ${error.message}`, 0);
    transport.onclose = () => this.finish('HTTP connection closed');
  }

  static async start(url: string, headers: Record<string, string>): Promise<HttpChannel> {
    const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers, redirect: 'error' } });
    const channel = new HttpChannel(transport);
    await transport.start();
    return channel;
  }

  /** After initialize, later requests carry the negotiated version in a header, as the spec asks. */
  setProtocolVersion(version: string): void {
    this.transport.setProtocolVersion(version);
  }

  send(message: JsonRpcMessage): boolean {
    if (this.closed) return false;
    this.transport.send(message as JSONRPCMessage).catch((error: unknown) => {
      const reason = error instanceof Error ? error.message : String(error);
      this.onProtocolViolation('transport', `send failed: ${reason}`, 0);
      const id = 'id' in message && 'method' in message ? message.id : undefined;
      if (id !== undefined) this.onMessage({ jsonrpc: '2.0', id, error: { code: -32015, message: `upstream HTTP request failed: ${reason}` } }, 0);
    });
    return true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.transport.terminateSession().catch(() => {});
    await this.transport.close();
    this.finish('closed by the gateway');
  }

  private finish(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose(reason);
  }
}
