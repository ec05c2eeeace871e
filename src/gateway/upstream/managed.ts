import type { BastionConfig, ServerConfig } from '../../config/index.js';
import { resolveMap } from '../../config/index.js';
import type { Logger } from '../../observability/index.js';
import type { JsonRpcNotification, JsonRpcRequest } from '../jsonrpc.js';
import { HttpChannel } from './http.js';
import type { ProcessLauncher } from './launcher.js';
import { StdioChannel } from './stdio.js';
import { UpstreamConnection, type InitializeParams } from './connection.js';
import { resolve } from 'node:path';

export interface UpstreamEvents {
  onServerRequest(server: string, request: JsonRpcRequest): void;
  onNotification(server: string, notification: JsonRpcNotification): void;
  /** A (re)started upstream is ready; its lists may differ from before. */
  onReady(server: string, restarted: boolean): void;
  /** The upstream stopped or failed to start; it will be restarted after `retryInMs`. */
  onDown(server: string, reason: string, retryInMs: number): void;
}

export interface ManagedUpstreamOptions {
  name: string;
  config: ServerConfig;
  gateway: BastionConfig;
  baseDir: string;
  launcher: ProcessLauncher;
  logger: Logger;
  initialize: InitializeParams;
  maxMessageBytes: number;
  /** Bytes that may wait for the server to read its stdin before requests are refused. */
  maxQueuedInputBytes: number;
  events: UpstreamEvents;
}

/** How long a restarted upstream must stay up before the backoff resets. */
const STABLE_AFTER_MS = 60_000;

/**
 * One upstream server for one client session: starts it, restarts it with exponential
 * backoff when it crashes, and hands out the live connection. A crash affects only the calls
 * that were in flight on this server.
 */
export class ManagedUpstream {
  private connection: UpstreamConnection | undefined;
  private starting: Promise<UpstreamConnection | undefined> | undefined;
  private backoffMs: number;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private startedAt = 0;
  private restarts = 0;
  lastError: string | undefined;

  constructor(private readonly options: ManagedUpstreamOptions) {
    this.backoffMs = options.gateway.upstream.restartBackoffMs;
  }

  get name(): string {
    return this.options.name;
  }

  /** The connection if the server is up now; undefined while it is (re)starting or failed. */
  get current(): UpstreamConnection | undefined {
    return this.connection?.isOpen === true ? this.connection : undefined;
  }

  /** Starts the server if it is not running; resolves with the connection, or undefined if it failed. */
  start(): Promise<UpstreamConnection | undefined> {
    if (this.current !== undefined) return Promise.resolve(this.current);
    this.starting ??= this.open().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  /** The connection, waiting up to `waitMs` for a (re)start in progress. */
  async ready(waitMs: number): Promise<UpstreamConnection | undefined> {
    if (this.current !== undefined) return this.current;
    if (this.stopped) return undefined;
    const pending = this.starting ?? (this.restartTimer === undefined ? this.start() : undefined);
    if (pending === undefined) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((done) => {
      timer = setTimeout(() => done(undefined), waitMs);
    });
    const result = await Promise.race([pending, timeout]);
    clearTimeout(timer);
    return result;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer !== undefined) clearTimeout(this.restartTimer);
    const starting = this.starting;
    if (starting !== undefined) await starting.catch(() => undefined);
    await this.connection?.close();
  }

  private async open(): Promise<UpstreamConnection | undefined> {
    const { name, config, logger } = this.options;
    const restarted = this.restarts > 0;
    try {
      const channel = config.transport === 'stdio'
        ? await StdioChannel.start(
            {
              server: name,
              command: config.command,
              args: config.args,
              env: resolveMap(config.env, `servers.${name}.env`, this.options.baseDir),
              cwd: config.cwd === undefined ? undefined : resolve(this.options.baseDir, config.cwd),
            },
            this.options.launcher,
            logger,
            this.options.maxMessageBytes,
            this.options.maxQueuedInputBytes,
          )
        : await HttpChannel.start(config.url, resolveMap(config.headers, `servers.${name}.headers`, this.options.baseDir));
      const connection = new UpstreamConnection(name, channel, logger);
      connection.onServerRequest = (request) => this.options.events.onServerRequest(name, request);
      connection.onNotification = (notification) => this.options.events.onNotification(name, notification);
      connection.onClose = (reason) => this.crashed(connection, reason);
      if (this.stopped) {
        await connection.close();
        return undefined;
      }
      const identity = await connection.initialize(this.options.initialize, this.options.gateway.upstream.startTimeoutMs);
      if (channel instanceof HttpChannel) channel.setProtocolVersion(identity.protocolVersion);
      this.connection = connection;
      this.startedAt = Date.now();
      this.lastError = undefined;
      logger.info({ server: name, protocolVersion: identity.protocolVersion, serverInfo: identity.serverInfo, restarted }, 'upstream ready');
      this.options.events.onReady(name, restarted);
      return connection;
    } catch (error) {
      this.lastError = error instanceof Error ? error.message : String(error);
      logger.error({ server: name, err: this.lastError }, 'upstream failed to start');
      this.scheduleRestart();
      return undefined;
    }
  }

  private crashed(connection: UpstreamConnection, reason: string): void {
    if (this.stopped || connection !== this.connection) return;
    this.lastError = reason;
    this.options.logger.warn({ server: this.options.name, reason }, 'upstream stopped');
    if (Date.now() - this.startedAt > STABLE_AFTER_MS) this.backoffMs = this.options.gateway.upstream.restartBackoffMs;
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.stopped || this.restartTimer !== undefined) return;
    const delay = this.backoffMs;
    this.options.events.onDown(this.options.name, this.lastError ?? 'unknown', delay);
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.gateway.upstream.maxBackoffMs);
    this.options.logger.info({ server: this.options.name, delayMs: delay }, 'restarting upstream after backoff');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.restarts += 1;
      void this.start();
    }, delay);
    this.restartTimer.unref();
  }
}
