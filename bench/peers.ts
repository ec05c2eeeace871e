// The other MCP fronts the gateway bench measures beside Bastion, in the same run: the best-known
// Node pass-through proxies, installed from npm as dev dependencies. Each is started exactly as its
// README says, with its own defaults, in front of the same upstream as Bastion. The bench only
// needs to know how to start one and where it listens; the drivers are the bench's own.
import { readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/bench/peers.js -> the repository's node_modules.
const nodeModules = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'node_modules');

/** How to start a peer and reach it. */
export interface PeerSpec {
  /** Short name used in the bench's role keys (`peer:<name>`). */
  name: string;
  label: string;
  /** How the bench's client talks to it. */
  transport: 'stdio' | 'http';
  args: string[];
  env: Record<string, string>;
  /** For HTTP peers: the endpoint to POST to once `port` accepts connections. */
  url?: string;
  port?: number;
}

/** The upstream the peers front: a stdio command (for peers that spawn it) and an HTTP endpoint. */
export interface PeerUpstream {
  stdio: { command: string; args: string[] };
  /** The upstream's own Streamable HTTP endpoint, e.g. http://127.0.0.1:PORT/mcp. */
  httpUrl: string;
}

/** The script a package's `bin` entry names. Some packages do not export package.json, so it is found on disk. */
function binOf(pkg: string, bin: string): string {
  const root = join(nodeModules, ...pkg.split('/'));
  const bins = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin;
  return join(root, bins[bin] as string);
}

/** A port nobody listens on now (the peers take a port number, not 0). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, rejectPort) => {
    const server = createServer();
    server.once('error', rejectPort);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port (peers print nothing reliable). */
export async function waitForPort(port: number, boundMs: number, where: string): Promise<void> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const open = await new Promise<boolean>((resolveProbe) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolveProbe(true);
      });
      socket.once('error', () => resolveProbe(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`${where}: nothing listens on port ${port} after ${boundMs / 1000} s`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 100));
  }
}

/**
 * The peers, per transport the client uses:
 * - stdio: `@civic/passthrough-mcp-server --stdio` and `supergateway --streamableHttp`, both of
 *   which reach their target over Streamable HTTP only (neither can spawn a stdio server);
 * - http: `mcp-proxy` (pinned to 6.2.0, the last release without a dependency that requires
 *   Node 22, which Bastion's Node 20 CI would warn about on every install) and `supergateway --stdio ... --outputTransport streamableHttp --stateful`,
 *   which spawn the stdio upstream as Bastion does, and `@civic/passthrough-mcp-server` in front
 *   of the upstream's HTTP endpoint.
 */
export async function peerSpecs(upstream: PeerUpstream): Promise<PeerSpec[]> {
  const civic = binOf('@civic/passthrough-mcp-server', 'passthrough-mcp-server');
  const supergateway = binOf('supergateway', 'supergateway');
  const mcpProxy = binOf('mcp-proxy', 'mcp-proxy');
  const target = new URL(upstream.httpUrl);
  const civicTarget = { TARGET_SERVER_URL: target.origin, TARGET_SERVER_MCP_PATH: target.pathname };
  const specs: PeerSpec[] = [
    { name: 'civic', label: '@civic/passthrough-mcp-server (to http)', transport: 'stdio', args: [civic, '--stdio'], env: civicTarget },
    { name: 'supergateway', label: 'supergateway (to http)', transport: 'stdio', args: [supergateway, '--streamableHttp', upstream.httpUrl, '--logLevel', 'none'], env: {} },
  ];
  const mcpProxyPort = await freePort();
  specs.push({
    name: 'mcp-proxy', label: 'mcp-proxy', transport: 'http', port: mcpProxyPort, url: `http://127.0.0.1:${mcpProxyPort}/mcp`, env: {},
    args: [mcpProxy, '--port', String(mcpProxyPort), '--host', '127.0.0.1', '--', upstream.stdio.command, ...upstream.stdio.args],
  });
  const supergatewayPort = await freePort();
  // supergateway takes the server as one command string that it runs through a shell: this is
  // its interface, not Bastion's; the bench passes only paths it controls (no user input).
  const commandLine = [upstream.stdio.command, ...upstream.stdio.args].join(' ');
  specs.push({
    name: 'supergateway', label: 'supergateway (stateful)', transport: 'http', port: supergatewayPort, url: `http://127.0.0.1:${supergatewayPort}/mcp`, env: {},
    args: [supergateway, '--stdio', commandLine, '--outputTransport', 'streamableHttp', '--stateful', '--port', String(supergatewayPort), '--logLevel', 'none'],
  });
  const civicPort = await freePort();
  specs.push({ name: 'civic', label: '@civic/passthrough-mcp-server (to http)', transport: 'http', port: civicPort, url: `http://127.0.0.1:${civicPort}/mcp`, env: { ...civicTarget, PORT: String(civicPort) }, args: [civic] });
  return specs;
}
