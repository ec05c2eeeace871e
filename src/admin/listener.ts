import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../observability/index.js';
import type { AdminListenerConfig, OperatorRole } from './config.js';
import type { GatewayMetrics } from './metrics.js';
import { OperatorTokens, roleAllows, type Operator } from './operators.js';

/** One readiness check: ok, or why not. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<{ ok: boolean; detail: string }>;
}

/** A router mounted on the admin listener (the admin API, the console): it answers every path it matches. */
export interface AdminRoute {
  matches(path: string): boolean;
  handle(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void>;
}

export interface AdminListenerOptions {
  config: AdminListenerConfig;
  routes?: AdminRoute[];
  metrics: GatewayMetrics;
  readiness: ReadinessCheck[];
  logger: Logger;
}

/** Slow or idle operator connections are cut; only the admin API reads request bodies, under a cap (api/http.ts). */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
const MAX_CONNECTIONS = 64;

/**
 * The admin listener, apart from the MCP listener: `/healthz` (the process serves), `/readyz`
 * (every readiness check passes), `/metrics` (Prometheus text, for operators with a token).
 * Operator tokens are their own: an agent's token opens nothing here.
 */
export class AdminListener {
  private readonly server: Server;
  private readonly tokens: OperatorTokens;

  constructor(private readonly options: AdminListenerOptions) {
    this.tokens = new OperatorTokens(options.config.tokens);
    if (this.tokens.empty && !options.config.metrics.public) throw new Error('listeners.admin needs tokens (bastion token hash gives the sha256 of one) or metrics.public: true');
    this.server = createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        options.logger.error({ err: error, path: request.url }, 'admin request failed');
        if (!response.headersSent) send(response, 500, { error: 'internal error' });
        else response.destroy();
      });
    });
    this.server.headersTimeout = HEADERS_TIMEOUT_MS;
    this.server.requestTimeout = REQUEST_TIMEOUT_MS;
    this.server.maxConnections = MAX_CONNECTIONS;
  }

  async listen(): Promise<string> {
    const { host, port } = this.options.config;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://admin');
    const path = url.pathname;
    const route = this.options.routes?.find((candidate) => candidate.matches(path));
    if (route !== undefined) return route.handle(request, response, url);
    if (request.method !== 'GET' && request.method !== 'HEAD') return send(response, 405, { error: 'only GET is served here' }, { Allow: 'GET, HEAD' });
    switch (path) {
      case '/healthz':
        return send(response, 200, { status: 'ok' });
      case '/readyz':
        return this.ready(response);
      case '/metrics': {
        if (!this.options.config.metrics.public && this.operator(request, response, 'viewer') === undefined) return;
        const text = await this.options.metrics.registry.metrics();
        response.writeHead(200, { 'Content-Type': this.options.metrics.registry.contentType, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
        response.end(request.method === 'HEAD' ? undefined : text);
        return;
      }
      default:
        return send(response, 404, { error: `no such admin endpoint: ${path}` });
    }
  }

  private async ready(response: ServerResponse): Promise<void> {
    const checks = await Promise.all(
      this.options.readiness.map(async (readiness) => {
        const result = await readiness.check().catch((error: unknown) => ({ ok: false, detail: error instanceof Error ? error.message : String(error) }));
        return { name: readiness.name, ...result };
      }),
    );
    const ready = checks.every((check) => check.ok);
    const failed = checks.filter((check) => !check.ok).map((check) => check.name);
    send(response, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', failed, checks });
  }

  /** The operator behind the request if their role allows `needed`; otherwise answers 401/403. */
  private operator(request: IncomingMessage, response: ServerResponse, needed: OperatorRole): Operator | undefined {
    const operator = this.tokens.authenticate(request.headers.authorization);
    if (operator === undefined) {
      send(response, 401, { error: 'an operator bearer token is required (listeners.admin.tokens)' }, { 'WWW-Authenticate': 'Bearer realm="bastion-admin"' });
      return undefined;
    }
    if (!roleAllows(operator.role, needed)) {
      send(response, 403, { error: `operator '${operator.operator}' has role ${operator.role}; this needs ${needed}` });
      return undefined;
    }
    return operator;
  }
}

function send(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', ...headers });
  response.end(`${JSON.stringify(body)}\n`);
}
