import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { UpstreamAuthorizationRequired } from '../../credentials/errors.js';
import type { UpstreamBearer } from '../../credentials/index.js';
import type { JsonRpcMessage } from '../jsonrpc.js';
import type { UpstreamChannel } from './channel.js';

/**
 * A remote upstream over Streamable HTTP, through the official SDK's client transport.
 * The headers are the ones configured for this server (already resolved from secrets); a
 * client's own token is never among them. A server with `auth` gets the session agent's own
 * bearer token on every request instead (src/credentials).
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
    transport.onerror = (error) => {
      // Needing the user's consent is not a protocol violation of the server; the call's answer says so.
      if (!(error instanceof UpstreamAuthorizationRequired)) this.onProtocolViolation('transport', `HTTP transport error: ${error.message}`, 0);
    };
    transport.onclose = () => this.finish('HTTP connection closed');
  }

  static async start(url: string, headers: Record<string, string>, bearer?: UpstreamBearer): Promise<HttpChannel> {
    const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers, redirect: 'error' }, ...(bearer === undefined ? {} : { fetch: withBearer(bearer) }) });
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
      const id = 'id' in message && 'method' in message ? message.id : undefined;
      if (error instanceof UpstreamAuthorizationRequired) {
        if (id !== undefined) this.onMessage({ jsonrpc: '2.0', id, error: error.errorBody() }, 0);
        return;
      }
      const reason = error instanceof Error ? error.message : String(error);
      this.onProtocolViolation('transport', `send failed: ${reason}`, 0);
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

/**
 * Every request carries the agent's current token; a 401 gets one renewal (refresh or a new
 * exchange) and one retry, then the error that asks for consent. Nothing else is tried.
 */
export function withBearer(bearer: UpstreamBearer): (input: string | URL, init?: RequestInit) => Promise<Response> {
  const send = (input: string | URL, init: RequestInit | undefined, token: string): Promise<Response> => {
    const headers = new Headers(init?.headers);
    headers.set('authorization', `Bearer ${token}`);
    return fetch(input, { ...init, headers });
  };
  return async (input, init) => {
    const token = await bearer.token();
    const response = await send(input, init, token);
    if (response.status !== 401) return response;
    await response.body?.cancel();
    return send(input, init, await bearer.rejected(token));
  };
}
