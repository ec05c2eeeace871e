// The egress broker: an HTTP CONNECT proxy on a unix socket that Bastion runs outside the
// sandbox and binds into it. The sandbox has no network of its own, so this socket is the only
// way out, and it opens exactly the destinations the server's scopes grant. Every attempt,
// allowed or refused, is reported through the callback (the gateway writes it to the audit log;
// refusals rate-limited). It also answers the relay's transparent-egress requests: `ORIGIN` (a
// plain connect() the namespace redirected; the broker reads where it was going from conntrack)
// and `RESOLVE` (a DNS query; granted names get an address that stands for that name only).
import { createServer, connect, isIP, type Server, type Socket } from 'node:net';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { egressAllowed, type EgressGrant } from './scopes.js';
import type { EgressEvent, EgressVia } from './types.js';
import { SANDBOX_NAMESERVER, type OriginalDestination } from './netns.js';
import { RefusalLimiter, scopeThatWouldAllow, SyntheticAddresses } from './egress-names.js';

const MAX_HEADER_BYTES = 8192;
const HEADER_TIMEOUT_MS = 10_000;

export interface EgressBroker {
  /** Host path of the socket (bind it into the sandbox). */
  readonly socketPath: string;
  /** Host path of the resolv.conf to bind at /etc/resolv.conf (names the DNS stub). */
  readonly resolvConfPath: string;
  /** From now on, transparent connections are looked up in this sandbox namespace's conntrack. */
  attachNamespace(originOf: (clientPort: number) => OriginalDestination | undefined): void;
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

/** The other requests the in-sandbox relay sends: `ORIGIN clientPort` (transparent TCP) and `RESOLVE name` (DNS stub). */
export function parseRelayRequest(head: string): { kind: 'origin'; clientPort: number } | { kind: 'resolve'; name: string } | undefined {
  const line = head.split('\r\n', 1)[0] ?? '';
  const origin = /^ORIGIN (\d{1,5}) HTTP\/1\.1$/.exec(line);
  if (origin) return { kind: 'origin', clientPort: Number(origin[1]) };
  const resolve = /^RESOLVE ([A-Za-z0-9_.-]{1,253}) HTTP\/1\.1$/.exec(line);
  if (resolve) return { kind: 'resolve', name: (resolve[1] as string).toLowerCase().replace(/\.$/, '') };
  return undefined;
}

export async function startEgressBroker(options: BrokerOptions): Promise<EgressBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-egress-'));
  const socketPath = join(dir, 'egress.sock');
  const sockets = new Set<Socket>();
  const names = new SyntheticAddresses();
  let originOf: ((clientPort: number) => OriginalDestination | undefined) | undefined;
  const limiter = new RefusalLimiter();
  const report = (host: string, port: number, allowed: boolean, reason: string, via: EgressVia): void => {
    let event: EgressEvent = { server: options.server, host, port, allowed, reason, via };
    if (!allowed) {
      event.scope = scopeThatWouldAllow(host, port);
      const suppressed = limiter.admit(`${host}:${port}`);
      if (suppressed === undefined) return;
      if (suppressed > 0) event = { ...event, suppressed };
    }
    try {
      options.onEvent(event);
    } catch {
      // A failing audit callback must not take the broker down with it.
    }
  };

  const tunnel = (client: Socket, target: { host: string; port: number }, rest: Buffer, via: EgressVia): void => {
    if (!egressAllowed(options.grants, target.host, target.port)) {
      report(target.host, target.port, false, 'no write:network scope grants this destination', via);
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const upstream = connect({ host: target.host, port: target.port });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.once('connect', () => {
      report(target.host, target.port, true, 'connected', via);
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (rest.length > 0) upstream.write(rest);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.once('error', (error) => {
      if (!upstream.remoteAddress) {
        report(target.host, target.port, true, `connect failed: ${error.message}`, via);
        client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
      }
      client.destroy();
    });
    client.once('close', () => upstream.destroy());
  };

  const relayRequest = (client: Socket, request: NonNullable<ReturnType<typeof parseRelayRequest>>, rest: Buffer): void => {
    if (request.kind === 'resolve') {
      // A name resolves only when some grant could use it, and to an address that stands for
      // exactly that name: connecting to it reaches the name, never another host.
      const granted = !isIP(request.name) && options.grants.some((grant) => grant.host === request.name || grant.host === '*');
      if (!granted) {
        report(request.name, 0, false, 'DNS: no write:network scope names this host', 'dns');
        client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
        return;
      }
      const address = names.addressOf(request.name);
      if (address === undefined) {
        report(request.name, 0, false, 'DNS: no synthetic address left for this name', 'dns');
        client.end('HTTP/1.1 503 Service Unavailable\r\n\r\n');
        return;
      }
      client.end(`HTTP/1.1 200 OK\r\nAddress: ${address}\r\n\r\n`);
      return;
    }
    const original = originOf?.(request.clientPort);
    if (!original) {
      report('?', 0, false, 'transparent connection whose original destination is unknown', 'transparent');
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    tunnel(client, { host: names.nameOf(original.host) ?? original.host, port: original.port }, rest, 'transparent');
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
          report('?', 0, false, 'request header too large', 'proxy');
          client.end('HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n');
        }
        return;
      }
      client.off('data', onData);
      clearTimeout(timer);
      const rest = head.subarray(end + 4);
      const text = head.subarray(0, end).toString('latin1');
      const target = parseConnect(text);
      if (target) {
        tunnel(client, target, rest, 'proxy');
        return;
      }
      const request = parseRelayRequest(text);
      if (request) {
        relayRequest(client, request, rest);
        return;
      }
      report('?', 0, false, 'not a CONNECT request (only CONNECT host:port is relayed)', 'proxy');
      client.end('HTTP/1.1 405 Method Not Allowed\r\n\r\n');
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
  const resolvConfPath = join(dir, 'resolv.conf');
  writeFileSync(resolvConfPath, `nameserver ${SANDBOX_NAMESERVER}\noptions attempts:1 timeout:2\n`, { mode: 0o644 });
  if (options.owner) chownSync(resolvConfPath, options.owner.uid, options.owner.gid);
  return {
    socketPath,
    resolvConfPath,
    attachNamespace: (lookup) => {
      originOf = lookup;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
