import { connect, type Socket } from 'node:net';
import { TEST_TOKEN } from './gateway.js';

export const ACCEPT = 'application/json, text/event-stream';

export interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown> | undefined;
  text: string;
}

/** One POST with fetch; the body is parsed as JSON when it is JSON, and as the first SSE message otherwise. */
export async function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: ACCEPT, authorization: `Bearer ${TEST_TOKEN}`, ...headers },
    body,
  });
  const text = await response.text();
  let parsed: Record<string, unknown> | undefined;
  if (text !== '') {
    const data = (response.headers.get('content-type') ?? '').includes('text/event-stream') ? /^data: (.*)$/m.exec(text)?.[1] : text;
    parsed = data === undefined ? undefined : (JSON.parse(data) as Record<string, unknown>);
  }
  return { status: response.status, headers: response.headers, body: parsed, text };
}

export function initializeBody(id: number | string = 1): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
}

/** Initializes a session for the token's agent; resolves with its id. */
export async function openSession(url: string, token = TEST_TOKEN): Promise<string> {
  const answer = await post(url, initializeBody(), { authorization: `Bearer ${token}` });
  if (answer.status !== 200) throw new Error(`initialize answered ${answer.status}: ${answer.text}`);
  const id = answer.headers.get('mcp-session-id') ?? '';
  await post(url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), { authorization: `Bearer ${token}`, 'mcp-session-id': id });
  return id;
}

export function callBody(id: number | string, tool: string, args: Record<string, unknown> = {}): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: args } });
}

/** A raw TCP connection to the gateway's port, with what it has received and whether the server closed it. */
export interface RawConnection {
  socket: Socket;
  received(): string;
  closed: Promise<void>;
  isClosed(): boolean;
}

export async function rawConnect(url: string): Promise<RawConnection> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let data = '';
  let closed = false;
  socket.on('data', (chunk: Buffer) => {
    data += chunk.toString('utf8');
  });
  socket.on('error', () => {});
  const closedPromise = new Promise<void>((resolve) => socket.once('close', () => {
    closed = true;
    resolve();
  }));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return { socket, received: () => data, closed: closedPromise, isClosed: () => closed };
}

/** Resolves true if `promise` settles within `ms`, false otherwise (a bound for "never", not a performance threshold). */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([promise.then(() => true, () => true), new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  })]);
  clearTimeout(timer);
  return result;
}
