// Shared by the admin API and console tests: one gateway with a rug-pull server, a policy with a
// grant that needs approval, and operator tokens for each role; raw HTTP helpers for the API; a
// reader for the SSE stream that waits for events instead of sleeping.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { hashToken } from '../../../src/auth/index.js';
import { fixture, startGateway, stdioServer, tempDir, type RunningGateway } from '../../helpers/gateway.js';

export const VIEWER = 'operator-viewer-token-0123456789abcdef';
export const APPROVER = 'operator-approver-token-0123456789abcd';
export const ADMIN = 'operator-admin-token-0123456789abcdefgh';
export const ALICE = 'alice-token';
export const BOB = 'bob-token';

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * alice may call rugpull.echo and get_weather freely and rugpull.add only after an approval
 * (30 s); bob needs an approval for add that expires after 1 s. The rug-pull server changes
 * get_weather after `rugpullAfter` calls; lists are fetched again before every call.
 */
export async function startConsoleGateway(options: { rugpullAfter: number; descriptionScript?: boolean; approvalChannels?: string[]; extraYaml?: string[]; renameAdd?: string } = { rugpullAfter: 1 }): Promise<{ running: RunningGateway; admin: string; policyFile: string; cleanup(): Promise<void> }> {
  const work = tempDir('bastion-console-');
  const policyFile = join(work.path, 'policy.yaml');
  writeFileSync(
    policyFile,
    [
      'version: 1',
      'agents:',
      '  alice:',
      '    grants:',
      '      - "exec:tools:rugpull.echo"',
      '      - "exec:tools:rugpull.get_weather"',
      '      - { scope: "exec:tools:rugpull.add", approval: required, approvalTimeoutSeconds: 30 }',
      '  bob:',
      '    grants:',
      '      - { scope: "exec:tools:rugpull.add", approval: required, approvalTimeoutSeconds: 1 }',
      '',
    ].join('\n'),
  );
  const port = await freePort();
  // Curation may show `add` under another name; policy grants keep naming the upstream's tool.
  const add = options.renameAdd === undefined ? '{ scopes: [] }' : `{ scopes: [], rename: ${options.renameAdd} }`;
  const tools = `    tools:\n      echo: { scopes: [] }\n      add: ${add}\n      get_weather: { scopes: [] }\n`;
  const yaml = [
    'version: 1',
    'stateDir: state',
    'listeners:',
    '  http: { host: 127.0.0.1, port: 0 }',
    '  admin:',
    `    port: ${port}`,
    '    tokens:',
    `      - { operator: vera, role: viewer, sha256: ${hashToken(VIEWER)} }`,
    `      - { operator: abe, role: approver, sha256: ${hashToken(APPROVER)} }`,
    `      - { operator: ada, role: admin, sha256: ${hashToken(ADMIN)} }`,
    'auth:',
    '  apiTokens:',
    `    - { agent: alice, sha256: ${hashToken(ALICE)} }`,
    `    - { agent: bob, sha256: ${hashToken(BOB)} }`,
    'policy:',
    `  files: [${JSON.stringify(policyFile)}]`,
    'integrity:',
    '  relistIntervalSeconds: 0',
    'sandbox: { backend: none }',
    ...(options.approvalChannels === undefined ? [] : [`approval: { channels: [${options.approvalChannels.join(', ')}] }`]),
    ...(options.extraYaml ?? []),
    'servers:',
    stdioServer('rugpull', fixture(options.descriptionScript === true ? 'script-description-server' : 'rugpull-server'), [String(options.rugpullAfter)], tools),
  ].join('\n');
  const running = await startGateway(yaml, work.path);
  const admin = (await running.bastion.startAdmin()) ?? assert.fail('no admin listener');
  return {
    running,
    admin,
    policyFile,
    cleanup: async () => {
      await running.stop();
      work.cleanup();
    },
  };
}

export interface ApiAnswer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

export async function api(admin: string, path: string, token: string | undefined, options: { method?: string; body?: unknown; headers?: Record<string, string>; rawBody?: string } = {}): Promise<ApiAnswer> {
  const headers: Record<string, string> = { ...(token === undefined ? {} : { Authorization: `Bearer ${token}` }), ...(options.body === undefined ? {} : { 'Content-Type': 'application/json' }), ...options.headers };
  const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const response = await fetch(`${admin}/api/v1/${path}`, { method: options.method ?? (body === undefined ? 'GET' : 'POST'), headers, ...(body === undefined ? {} : { body }) });
  const text = await response.text();
  return { status: response.status, body: text.length === 0 ? {} : (JSON.parse(text) as Record<string, unknown>), headers: response.headers };
}

export interface StreamEvent {
  event: string;
  data: Record<string, unknown>;
}

/** The SSE stream, read with fetch; `next` resolves with the first event (from now or already buffered) that matches. */
export async function openStream(admin: string, token: string, query = ''): Promise<{ next(match: (event: StreamEvent) => boolean): Promise<StreamEvent>; close(): void }> {
  const controller = new AbortController();
  const response = await fetch(`${admin}/api/v1/audit/stream${query}`, { headers: { Authorization: `Bearer ${token}` }, signal: controller.signal });
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  const seen: StreamEvent[] = [];
  const waiters: Array<{ match: (event: StreamEvent) => boolean; resolve: (event: StreamEvent) => void }> = [];
  // An event goes to the first waiter it matches, or is kept for a later next().
  const deliver = (event: StreamEvent): void => {
    const waiter = waiters.find((candidate) => candidate.match(event));
    if (waiter === undefined) {
      seen.push(event);
      return;
    }
    waiters.splice(waiters.indexOf(waiter), 1);
    waiter.resolve(event);
  };
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf('\n\n');
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event !== undefined && data !== undefined) deliver({ event, data: JSON.parse(data) as Record<string, unknown> });
        }
      }
    } catch {
      // aborted by close()
    }
  })();
  return {
    next: (match) => {
      const found = seen.find(match);
      if (found !== undefined) {
        seen.splice(seen.indexOf(found), 1);
        return Promise.resolve(found);
      }
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
    close: () => controller.abort(),
  };
}

export const isRecordOf = (tool: string, agent?: string) => (event: StreamEvent): boolean =>
  event.event === 'record' && (event.data['tools_invoked'] as string[] | undefined)?.[0] === tool && (agent === undefined || event.data['agent_id'] === agent);
