import type { Identity } from '../../pipeline/index.js';
import type { Classified, JsonRpcMessage } from '../jsonrpc.js';
import type { Responder } from './agent-context.js';
import { claimedVersion, readEnvelope } from './envelope.js';
import type { StatelessFront } from './front.js';

/**
 * Whether a line from the stdio client belongs to the stateless revision: a request or
 * notification with a 2026-07-28 envelope (or a server/discover probe) from a client that has
 * not initialized a stateful session. Once a session is initialized, the session serves it.
 */
export function isStatelessMessage(classified: Classified, sessionInitialized: boolean): boolean {
  if (sessionInitialized) return false;
  if (classified.kind !== 'request' && classified.kind !== 'notification') return false;
  const { method, params } = classified.message;
  return method !== 'initialize' && (claimedVersion(params) !== undefined || method === 'server/discover');
}

/** Serves one stateless message over stdio (no headers to check: the pipe is the client's own). */
export function serveStatelessMessage(front: StatelessFront, classified: Classified, bytes: number, identity: Identity, write: (message: JsonRpcMessage) => boolean): void {
  if (classified.kind === 'notification') {
    if (classified.message.method === 'notifications/cancelled') front.cancelled(identity, classified.message.params?.['requestId']);
    return;
  }
  if (classified.kind !== 'request') return;
  const { id, params } = classified.message;
  const envelope = readEnvelope(params);
  if ('refused' in envelope) {
    write({ jsonrpc: '2.0', id, error: envelope.refused });
    return;
  }
  let done = false;
  const responder: Responder = {
    send: (message, final) => {
      if (done) return false;
      done = final;
      return write(message);
    },
    abandon: () => {
      done = true;
    },
  };
  front.request(classified.message, envelope, bytes, identity, responder).catch(() => {
    responder.send({ jsonrpc: '2.0', id, error: { code: -32603, message: 'internal gateway error; the request was not completed' } }, true);
  });
}
