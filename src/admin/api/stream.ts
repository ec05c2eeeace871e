// The live audit stream: Server-Sent Events over a response the console (or curl) reads with its
// bearer token in the Authorization header (fetch with a streaming body; EventSource cannot send
// headers, and a token in the URL would end up in logs). Filters narrow the stream to an agent,
// server, decision or method; approvals waiting and decided are sent as their own events.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApprovalQueue } from '../../approval/index.js';
import { API_HEADERS, intParam } from './http.js';
import type { AuditFeed, FeedRecord } from './feed.js';

/** A comment line this often keeps proxies and idle timers from closing a quiet stream. */
const KEEPALIVE_MS = 15_000;
/** A client that stops reading is cut once this much is waiting for it. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

export interface StreamFilter {
  agent?: string;
  server?: string;
  decision?: string;
  method?: string;
  kind?: string;
}

export function streamFilter(params: URLSearchParams): StreamFilter {
  const filter: StreamFilter = {};
  for (const key of ['agent', 'server', 'decision', 'method', 'kind'] as const) {
    const value = params.get(key);
    if (value !== null && value !== '') filter[key] = value;
  }
  return filter;
}

export function passes(record: FeedRecord, filter: StreamFilter): boolean {
  if (filter.agent !== undefined && record.agent_id !== filter.agent) return false;
  if (filter.server !== undefined && record.server !== filter.server) return false;
  if (filter.decision !== undefined && record.decision !== filter.decision) return false;
  if (filter.method !== undefined && record.method !== filter.method) return false;
  if (filter.kind !== undefined && record.kind !== filter.kind) return false;
  return true;
}

export function serveStream(request: IncomingMessage, response: ServerResponse, params: URLSearchParams, feed: AuditFeed, approvals: ApprovalQueue | undefined): void {
  const filter = streamFilter(params);
  const backlog = intParam(params, 'backlog', 0, 0, 200) ?? 0;
  response.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', ...API_HEADERS, Connection: 'keep-alive' });
  response.write(': bastion audit stream\n\n');
  const send = (event: string, data: unknown): void => {
    if (response.writableLength > MAX_BUFFERED_BYTES) {
      response.destroy();
      return;
    }
    response.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  if (backlog > 0) for (const record of feed.latest().filter((item) => passes(item, filter)).slice(-backlog)) send('record', record);
  const stopFeed = feed.subscribe((record) => {
    if (passes(record, filter)) send('record', record);
  });
  const stopApprovals = approvals?.subscribe((change) => send(change.type === 'pending' ? 'approval' : 'approval-decided', { ...change.approval, ...(change.outcome === undefined ? {} : { outcome: change.outcome }) }));
  const keepalive = setInterval(() => response.write(': keepalive\n\n'), KEEPALIVE_MS);
  keepalive.unref();
  const stop = (): void => {
    clearInterval(keepalive);
    stopFeed();
    stopApprovals?.();
  };
  request.once('close', stop);
  response.once('close', stop);
}
