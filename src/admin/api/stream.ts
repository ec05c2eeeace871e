// The live audit stream: Server-Sent Events over a response the console (or curl) reads with its
// bearer token in the Authorization header (fetch with a streaming body; EventSource cannot send
// headers, and a token in the URL would end up in logs). It carries call records and the
// gateway's events (sessions, upstreams, quarantines, admin actions, approvals); filters narrow
// it to an agent, server, decision, method, category or event name; approvals waiting and
// decided are also sent as their own SSE events for the approvals view.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApprovalQueue } from '../../approval/index.js';
import { API_HEADERS, ApiError, intParam } from './http.js';
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
  /** Any of these categories (FEED_CATEGORIES). */
  categories?: FeedCategory[];
  /** Event names, or prefixes ending in a dot (`upstream.`). */
  events?: string[];
}

/** What the feed's categories hold: call records, or events whose name is one of these or starts with a prefix ending in '.'. */
export const FEED_CATEGORIES = {
  calls: [],
  sessions: ['session.', 'client.', 'request.cancelled', 'stateless.'],
  upstreams: ['upstream.', 'limits.breaker', 'sandbox.', 'server_request'],
  quarantines: ['quarantine', 'quarantine.', 'definition.', 'server.tools_undeclared'],
  admin: ['admin.'],
  approvals: ['approval.'],
  gateway: ['gateway.', 'config.', 'policy.', 'alert', 'curation.', 'credentials.', 'auth.'],
} as const satisfies Record<string, readonly string[]>;
export type FeedCategory = keyof typeof FEED_CATEGORIES;

export function streamFilter(params: URLSearchParams): StreamFilter {
  const filter: StreamFilter = {};
  for (const key of ['agent', 'server', 'decision', 'method', 'kind'] as const) {
    const value = params.get(key);
    if (value !== null && value !== '') filter[key] = value;
  }
  const categories = listParam(params, 'category');
  if (categories !== undefined) {
    const unknown = categories.filter((category) => !(category in FEED_CATEGORIES));
    if (unknown.length > 0) throw new ApiError(400, `unknown category ${unknown.join(', ')}: use ${Object.keys(FEED_CATEGORIES).join(', ')}`);
    filter.categories = categories as FeedCategory[];
  }
  const events = listParam(params, 'event');
  if (events !== undefined) filter.events = events;
  return filter;
}

function listParam(params: URLSearchParams, key: string): string[] | undefined {
  const value = params.get(key);
  if (value === null || value === '') return undefined;
  return value.split(',').map((item) => item.trim()).filter((item) => item.length > 0);
}

/** An event's name against names and dot-ended prefixes. */
function named(event: string, patterns: readonly string[]): boolean {
  return patterns.some((pattern) => (pattern.endsWith('.') ? event.startsWith(pattern) : event === pattern));
}

function inCategory(record: FeedRecord, category: FeedCategory): boolean {
  if (category === 'calls') return record.kind === 'request';
  return record.kind === 'event' && named(record.event ?? '', FEED_CATEGORIES[category]);
}

/** The agent or server a record concerns: a call's own fields, or an event's info members. */
function subjectOf(record: FeedRecord, key: 'agent' | 'server'): unknown {
  if (key === 'agent') return record.agent_id ?? record.info?.['agent_id'] ?? record.info?.['agent'] ?? record.info?.['operator'];
  return record.server ?? record.info?.['server'];
}

export function passes(record: FeedRecord, filter: StreamFilter): boolean {
  if (record.kind === 'event' && record.event === 'audit.seal') return false;
  if (filter.agent !== undefined && subjectOf(record, 'agent') !== filter.agent) return false;
  if (filter.server !== undefined && subjectOf(record, 'server') !== filter.server) return false;
  if (filter.decision !== undefined && (record.decision ?? record.info?.['decision']) !== filter.decision) return false;
  if (filter.method !== undefined && record.method !== filter.method) return false;
  if (filter.kind !== undefined && record.kind !== filter.kind) return false;
  if (filter.categories !== undefined && !filter.categories.some((category) => inCategory(record, category))) return false;
  if (filter.events !== undefined && (record.kind !== 'event' || !named(record.event ?? '', filter.events))) return false;
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
