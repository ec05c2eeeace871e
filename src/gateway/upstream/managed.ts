import type { BastionConfig, ServerConfig } from '../../config/index.js';
import { resolveMap } from '../../config/index.js';
import type { Logger } from '../../observability/index.js';
import type { JsonRpcNotification, JsonRpcRequest } from '../jsonrpc.js';
import { HttpChannel } from './http.js';
import type { ProcessSubject } from './channel.js';
import { SseChannel } from './sse.js';
import type { ProcessLauncher } from './launcher.js';
import { StdioChannel } from './stdio.js';
import { UpstreamConnection, type InitializeParams } from './connection.js';
import type { UpstreamAuditSink } from './reporter.js';
import { serverStartState, type ServerStartState } from './start-state.js';
import { UpstreamAuthorizationRequired } from '../../credentials/errors.js';
import type { UpstreamBearer } from '../../credentials/index.js';
import { resolve } from 'node:path';

export interface UpstreamEvents {
  onServerRequest(server: string, request: JsonRpcRequest): void;
  onNotification(server: string, notification: JsonRpcNotification): void;
  /** A (re)started upstream is ready; its lists may differ from before. */
  onReady(server: string, restarted: boolean): void;
  /**
   * The upstream stopped or failed to start; it will be restarted after `retryInMs`. Aggregated
   * per server: `aggregated` is how many downs (this one included) the call stands for.
   */
  onDown(server: string, reason: string, retryInMs: number, aggregated?: number): void;
  /** Lifecycle and protocol events to audit (start, restart, exit, kill, violations, stray responses). */
  onAudit?: UpstreamAuditSink;
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
  /** A remote server with `auth`: the session agent's own bearer token (src/credentials). */
  bearer?: UpstreamBearer | undefined;
  events: UpstreamEvents;
  /**
   * Pooled upstreams restart on demand: after a crash nothing is scheduled, and the next call
   * waits out the backoff (if it fits in its wait) and starts the process again.
   */
  restartOnDemand?: boolean;
  /** Whom the process serves (its sandbox view follows that agent's grants). */
  serves?: ProcessSubject;
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
  private readonly startState: ServerStartState;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private startedAt = 0;
  private restarts = 0;
  lastError: string | undefined;
  /** Set while the agent's user must authorize (consent) before this server can be used. */
  authorizationRequired: UpstreamAuthorizationRequired | undefined;
  private processId: number | undefined;

  constructor(private readonly options: ManagedUpstreamOptions) {
    this.startState = serverStartState(options.gateway, options.name);
  }

  /** The pid of the running stdio process (undefined for HTTP servers and while it is down). */
  get pid(): number | undefined {
    return this.current === undefined ? undefined : this.processId;
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

  /** What `ready()` resolves with at once: the connection when the server is up. */
  readyNow(): UpstreamConnection | undefined {
    return this.current;
  }

  /** The connection, waiting up to `waitMs` for a (re)start in progress. */
  async ready(waitMs: number): Promise<UpstreamConnection | undefined> {
    if (this.current !== undefined) return this.current;
    if (this.stopped) return undefined;
    if (this.options.restartOnDemand === true && this.starting === undefined) return this.startOnDemand(waitMs);
    const pending = this.starting ?? (this.restartTimer === undefined ? this.start() : undefined);
    if (pending === undefined) return undefined;
    return this.within(pending, waitMs);
  }

  /** `pending`, or undefined if it takes longer than `waitMs`. */
  private async within(pending: Promise<UpstreamConnection | undefined>, waitMs: number): Promise<UpstreamConnection | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((done) => {
      timer = setTimeout(() => done(undefined), waitMs);
    });
    const result = await Promise.race([pending, timeout]);
    clearTimeout(timer);
    return result;
  }

  /** Stops the process without counting it as a crash; the next `ready()` starts a new one. */
  async recycle(reason: string): Promise<void> {
    const connection = this.connection;
    if (connection === undefined || this.stopped) return;
    this.connection = undefined; // crashed() ignores a connection that is no longer current
    this.audit('upstream.recycled', { reason, uptime_ms: Date.now() - this.startedAt });
    await connection.close();
  }

  /** Waits out the start backoff when it fits in `waitMs`, then starts the server. */
  private async startOnDemand(waitMs: number): Promise<UpstreamConnection | undefined> {
    const backoff = this.startState.waitMs();
    if (backoff > waitMs) {
      this.lastError = `not started: ${this.startState.failures} consecutive failed start(s) of this server; next attempt in ${backoff} ms`;
      return undefined;
    }
    if (backoff > 0) await new Promise((resolve) => setTimeout(resolve, backoff));
    if (this.stopped) return undefined;
    if (this.current !== undefined) return this.current;
    return this.within(this.start(), Math.max(1, waitMs - backoff));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer !== undefined) clearTimeout(this.restartTimer);
    const starting = this.starting;
    if (starting !== undefined) await starting.catch(() => undefined);
    await this.connection?.close();
  }

  private audit(event: string, info: Record<string, string | number | boolean | null>): void {
    this.options.events.onAudit?.(event, { server: this.options.name, ...info });
  }

  private async open(): Promise<UpstreamConnection | undefined> {
    const { name, config, logger } = this.options;
    const restarted = this.restarts > 0;
    // Waiting for a user's consent is not a failing server: it does not count toward the
    // backoff or the breaker shared by every session, and the next call checks again.
    if (this.options.bearer !== undefined && !(await this.authorized(this.options.bearer))) return undefined;
    if (!this.startState.tryBegin()) {
      // Another session's attempt failed recently (or is probing the open breaker): wait for it.
      this.lastError = `not started: ${this.startState.failures} consecutive failed start(s) of this server; next attempt in ${this.startState.waitMs()} ms`;
      this.scheduleRestart(Math.max(this.startState.waitMs(), this.options.gateway.upstream.restartBackoffMs), false);
      return undefined;
    }
    let connection: UpstreamConnection | undefined;
    try {
      const channel = config.transport === 'stdio'
        ? await StdioChannel.start(
            {
              server: name,
              command: config.command,
              args: config.args,
              env: resolveMap(config.env, `servers.${name}.env`, this.options.baseDir),
              cwd: config.cwd === undefined ? undefined : resolve(this.options.baseDir, config.cwd),
              ...(this.options.serves === undefined ? {} : { serves: this.options.serves }),
            },
            this.options.launcher,
            logger,
            this.options.maxMessageBytes,
            this.options.maxQueuedInputBytes,
          )
        : config.legacySse === true
          ? await SseChannel.start(config.url, resolveMap(config.headers, `servers.${name}.headers`, this.options.baseDir), { maxMessageBytes: this.options.maxMessageBytes, timeoutMs: this.options.gateway.upstream.startTimeoutMs, ...(this.options.bearer === undefined ? {} : { bearer: this.options.bearer }) })
          : await HttpChannel.start(config.url, resolveMap(config.headers, `servers.${name}.headers`, this.options.baseDir), this.options.bearer);
      const opened = new UpstreamConnection(name, channel, logger, (event, info) => this.audit(event, info));
      connection = opened;
      if (channel instanceof StdioChannel) {
        const pid = channel.pid ?? null;
        channel.onForcedKill = (graceMs) => this.audit('upstream.killed', { pid, signal: 'SIGKILL', grace_ms: graceMs });
      }
      opened.onServerRequest = (request) => this.options.events.onServerRequest(name, request);
      opened.onNotification = (notification) => this.options.events.onNotification(name, notification);
      opened.onClose = (reason) => this.crashed(opened, channel, reason);
      if (this.stopped) {
        this.startState.abandoned();
        await opened.close();
        return undefined;
      }
      const identity = await opened.initialize(this.options.initialize, this.options.gateway.upstream.startTimeoutMs);
      if (channel instanceof HttpChannel) channel.setProtocolVersion(identity.protocolVersion);
      this.connection = opened;
      this.processId = channel instanceof StdioChannel ? channel.pid : undefined;
      this.startedAt = Date.now();
      this.lastError = undefined;
      this.startState.succeeded();
      logger.info({ server: name, protocolVersion: identity.protocolVersion, serverInfo: identity.serverInfo, restarted }, 'upstream ready');
      this.audit(restarted ? 'upstream.restart' : 'upstream.start', { pid: channel instanceof StdioChannel ? (channel.pid ?? null) : null, protocol_version: identity.protocolVersion, restarts: this.restarts, upstream_transport: channel instanceof SseChannel ? 'sse' : config.transport });
      this.options.events.onReady(name, restarted);
      return opened;
    } catch (error) {
      this.lastError = error instanceof Error ? error.message : String(error);
      logger.error({ server: name, err: this.lastError }, 'upstream failed to start');
      // A process that started but failed its handshake is stopped and reaped, never left running.
      await connection?.close().catch(() => undefined);
      this.scheduleRestart(this.startState.failed(), true);
      return undefined;
    }
  }

  private async authorized(bearer: UpstreamBearer): Promise<boolean> {
    // Discovery, registration or an exchange at a slow authorization server must not hold the session's initialize.
    const limitMs = this.options.gateway.upstream.startTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the authorization server did not answer within ${limitMs} ms; retry shortly`)), limitMs);
    });
    try {
      await Promise.race([bearer.token(), timeout]);
      this.authorizationRequired = undefined;
      return true;
    } catch (error) {
      this.authorizationRequired = error instanceof UpstreamAuthorizationRequired ? error : undefined;
      this.lastError = error instanceof Error ? error.message : String(error);
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  private crashed(connection: UpstreamConnection, channel: unknown, reason: string): void {
    if (this.stopped || connection !== this.connection) return;
    this.lastError = reason;
    this.options.logger.warn({ server: this.options.name, reason }, 'upstream stopped');
    const exit = channel instanceof StdioChannel ? channel.exitInfo : undefined;
    this.audit('upstream.exit', { reason, code: exit?.code ?? null, signal: exit?.signal ?? null, uptime_ms: Date.now() - this.startedAt });
    // A server that dies soon after starting is failing to start: that counts toward its backoff and breaker.
    const delay = Date.now() - this.startedAt > STABLE_AFTER_MS ? this.options.gateway.upstream.restartBackoffMs : this.startState.failed();
    this.scheduleRestart(delay, true);
  }

  private scheduleRestart(delay: number, down: boolean): void {
    if (this.stopped || this.restartTimer !== undefined) return;
    if (down) {
      const note = this.startState.noteDown();
      if (note.report) this.options.events.onDown(this.options.name, this.lastError ?? 'unknown', delay, note.aggregated);
      this.options.logger.info({ server: this.options.name, delayMs: delay }, this.options.restartOnDemand === true ? 'upstream restarts on the next call' : 'restarting upstream after backoff');
    }
    if (this.options.restartOnDemand === true) {
      this.restarts += 1;
      return;
    }
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.restarts += 1;
      void this.start();
    }, delay);
    this.restartTimer.unref();
  }
}
