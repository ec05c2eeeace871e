// The egress broker: an HTTP CONNECT proxy on a unix socket that Bastion runs outside the
// sandbox and binds into it. The sandbox has no network of its own, so this socket is the only
// way out, and it opens exactly the destinations the server's scopes grant. Every attempt,
// allowed or refused, is reported through the callback (the gateway writes it to the audit log).
import { createServer, connect, type Server, type Socket } from 'node:net';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { egressAllowed, type EgressGrant } from './scopes.js';
import type { EgressEvent } from './types.js';

const MAX_HEADER_BYTES = 8192;
const HEADER_TIMEOUT_MS = 10_000;

export interface EgressBroker {
  /** Host path of the socket (bind it into the sandbox). */
  readonly socketPath: string;
  close(): Promise<void>;
}

export interface BrokerOptions {
  server: string;
  grants: readonly EgressGrant[];
  onEvent: (event: EgressEvent) => void;
  /** Owner of the socket directory, so an unprivileged sandbox uid can reach it. */
  owner?: { uid: number; gid: number };
}

/** Parses `CONNECT host:port HTTP/1.x`; undefined when the request is anything else. */
export function parseConnect(head: string): { host: string; port: number } | undefined {
  const line = head.split('\r\n', 1)[0] ?? '';
  const match = /^CONNECT (\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5}) HTTP\/1\.[01]$/.exec(line);
  if (!match) return undefined;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (match[1] as string).replace(/^\[|\]$/g, '').toLowerCase(), port };
}

export async function startEgressBroker(options: BrokerOptions): Promise<EgressBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-egress-'));
  const socketPath = join(dir, 'egress.sock');
  const sockets = new Set<Socket>();
  const report = (host: string, port: number, allowed: boolean, reason: string): void => {
    try {
      options.onEvent({ server: options.server, host, port, allowed, reason });
    } catch {
      // A failing audit callback must not take the broker down with it.
    }
  };

  const handle = (client: Socket): void => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => client.destroy(), HEADER_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_HEADER_BYTES) {
          clearTimeout(timer);
          report('?', 0, false, 'request header too large');
          client.end('HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n');
        }
        return;
      }
      client.off('data', onData);
      clearTimeout(timer);
      const rest = head.subarray(end + 4);
      const target = parseConnect(head.subarray(0, end).toString('latin1'));
      if (!target) {
        report('?', 0, false, 'not a CONNECT request (only CONNECT host:port is relayed)');
        client.end('HTTP/1.1 405 Method Not Allowed\r\n\r\n');
        return;
      }
      if (!egressAllowed(options.grants, target.host, target.port)) {
        report(target.host, target.port, false, 'no write:network scope grants this destination');
        client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
        return;
      }
      const upstream = connect({ host: target.host, port: target.port });
      sockets.add(upstream);
      upstream.on('close', () => sockets.delete(upstream));
      upstream.once('connect', () => {
        report(target.host, target.port, true, 'connected');
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (rest.length > 0) upstream.write(rest);
        client.pipe(upstream);
        upstream.pipe(client);
      });
      upstream.once('error', (error) => {
        if (!upstream.remoteAddress) {
          report(target.host, target.port, true, `connect failed: ${error.message}`);
          client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
        }
        client.destroy();
      });
      client.once('close', () => upstream.destroy());
    };
    client.on('data', onData);
  };

  const server: Server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  chmodSync(socketPath, 0o600);
  chmodSync(dir, 0o700);
  if (options.owner) {
    chownSync(dir, options.owner.uid, options.owner.gid);
    chownSync(socketPath, options.owner.uid, options.owner.gid);
  }
  return {
    socketPath,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
