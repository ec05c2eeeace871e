import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '../../pipeline/index.js';
import type { Classified, JsonRpcMessage } from '../jsonrpc.js';
import { serializeMessage } from '../lossless-id.js';
import type { Responder } from './agent-context.js';
import { claimedVersion, headerProblem, readEnvelope, STATELESS_PROTOCOL_VERSION } from './envelope.js';
import type { StatelessFront } from './front.js';

/**
 * One stateless request's answer over HTTP: a JSON body when the answer is all there is,
 * an SSE stream when anything comes first (progress, a listen stream's notifications).
 */
class HttpResponder implements Responder {
  private streaming = false;
  private done = false;
  private keepAlive: NodeJS.Timeout | undefined;

  constructor(
    private readonly res: ServerResponse,
    onGone: (responder: HttpResponder) => void,
  ) {
    res.once('close', () => {
      this.stopKeepAlive();
      if (this.done) return;
      this.done = true;
      // Closing the request's stream is how a client of this revision cancels over HTTP.
      onGone(this);
    });
  }

  get finished(): boolean {
    return this.done;
  }

  send(message: JsonRpcMessage, final: boolean): boolean {
    if (this.done || this.res.destroyed) return false;
    const body = serializeMessage(message);
    if (!this.streaming && final) {
      this.done = true;
      this.res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      this.res.end(body);
      return true;
    }
    if (!this.streaming) {
      this.streaming = true;
      this.res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive' });
      this.keepAlive = setInterval(() => this.res.write(': keep-alive\n\n'), 25_000);
      this.keepAlive.unref();
    }
    this.res.write(`event: message\ndata: ${body}\n\n`);
    if (final) {
      this.done = true;
      this.stopKeepAlive();
      this.res.end();
    }
    return true;
  }

  abandon(): void {
    if (this.done) return;
    this.done = true;
    this.stopKeepAlive();
    if (!this.res.headersSent) this.res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform' });
    this.res.end();
  }

  private stopKeepAlive(): void {
    if (this.keepAlive !== undefined) clearInterval(this.keepAlive);
    this.keepAlive = undefined;
  }
}

/**
 * Whether a POST belongs to the stateless revision: no session id, and either a 2026-07-28
 * envelope, a 2026-07-28 MCP-Protocol-Version header or a server/discover probe. Anything else
 * keeps today's session-based handling.
 */
export function isStatelessPost(req: IncomingMessage, classified: Classified): boolean {
  if (req.headers['mcp-session-id'] !== undefined) return false;
  if (classified.kind !== 'request' && classified.kind !== 'notification') return false;
  const { method, params } = classified.message;
  if (method === 'initialize') return false;
  return claimedVersion(params) !== undefined || req.headers['mcp-protocol-version'] === STATELESS_PROTOCOL_VERSION || method === 'server/discover';
}

function refuse(res: ServerResponse, body: unknown): void {
  const text = serializeMessage(body as object);
  res.writeHead(400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Serves one stateless POST (already authenticated: every stateless request carries its token). */
export function serveStatelessPost(front: StatelessFront, req: IncomingMessage, res: ServerResponse, classified: Classified, bytes: number, identity: Identity): void {
  if (classified.kind !== 'request' && classified.kind !== 'notification') return;
  const { method, params } = classified.message;
  const id = classified.kind === 'request' ? classified.message.id : null;
  if (classified.kind === 'notification') {
    // Notifications carry no envelope requirement; headers that are present must still agree.
    const version = claimedVersion(params) ?? STATELESS_PROTOCOL_VERSION;
    const problem = headerProblem((name) => req.headers[name], method, params, version, false);
    if (problem !== undefined) return refuse(res, { jsonrpc: '2.0', id: null, error: problem });
    if (method === 'notifications/cancelled') front.cancelled(identity, params?.['requestId']);
    res.writeHead(202);
    res.end();
    return;
  }
  const envelope = readEnvelope(params);
  if ('refused' in envelope) return refuse(res, { jsonrpc: '2.0', id, error: envelope.refused });
  const problem = headerProblem((name) => req.headers[name], method, params, envelope.protocolVersion, true);
  if (problem !== undefined) return refuse(res, { jsonrpc: '2.0', id, error: problem });
  const responder = new HttpResponder(res, (gone) => {
    front.clientGone(identity, (call) => call.responder === gone);
    front.listenerGone(identity, gone);
  });
  front.request(classified.message, envelope, bytes, identity, responder).catch(() => {
    responder.send({ jsonrpc: '2.0', id, error: { code: -32603, message: 'internal gateway error; the request was not completed' } }, true);
  });
}
