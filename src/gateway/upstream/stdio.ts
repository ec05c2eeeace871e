import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Logger } from '../../observability/index.js';
import { LineFramer } from '../framing.js';
import type { JsonRpcMessage } from '../jsonrpc.js';
import type { LaunchSpec, UpstreamChannel } from './channel.js';
import type { LaunchedProcess, ProcessLauncher } from './launcher.js';
import { StderrLog } from './stderr.js';

const KILL_GRACE_MS = 2000;

/** Talks newline-delimited JSON-RPC to a child process's stdin/stdout. */
export class StdioChannel implements UpstreamChannel {
  onMessage: UpstreamChannel['onMessage'] = () => {};
  onProtocolViolation: UpstreamChannel['onProtocolViolation'] = () => {};
  onClose: UpstreamChannel['onClose'] = () => {};
  /** The gateway had to SIGKILL the process: it did not exit within the grace period after SIGTERM. */
  onForcedKill: (graceMs: number) => void = () => {};
  /** How the process ended, once it has. */
  exitInfo: { code: number | null; signal: string | null } | undefined;
  private closed = false;
  private corked = false;

  private constructor(
    private readonly process: LaunchedProcess,
    private readonly logger: Logger,
    maxMessageBytes: number,
    private readonly maxQueuedInputBytes: number,
    server: string,
  ) {
    const child = process.child;
    const stderr = new StderrLog(server, logger);
    const framer = new LineFramer(
      maxMessageBytes,
      (line, bytes) => this.receive(line, bytes),
      (bytes) => this.onProtocolViolation('oversize', `a message of at least ${bytes} bytes exceeds the ${maxMessageBytes}-byte cap`, bytes),
    );
    child.stdout.on('data', (chunk: Buffer) => framer.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.stderr.once('end', () => stderr.flush());
    child.stdin.on('error', () => {});
    child.once('exit', (code, signal) => {
      // A sandbox reports a server killed by signal N as exit 128+N: the launcher names it.
      const named = process.describeExit?.(code, signal);
      this.exitInfo = { code, signal: named?.signal ?? signal };
      this.finish(named ? `exited on signal ${named.signal} (${named.detail})` : signal !== null ? `exited on signal ${signal}` : `exited with code ${code}`);
    });
    child.once('error', (error) => this.finish(`process error: ${error.message}`));
  }

  /**
   * `maxMessageBytes` caps one message from the upstream; `maxQueuedInputBytes` caps what may
   * wait for the upstream to read its stdin.
   */
  static async start(spec: LaunchSpec, launcher: ProcessLauncher, logger: Logger, maxMessageBytes: number, maxQueuedInputBytes: number): Promise<StdioChannel> {
    const launched = await launcher.launch(spec);
    return new StdioChannel(launched, logger, maxMessageBytes, maxQueuedInputBytes, spec.server);
  }

  get pid(): number | undefined {
    return this.process.child.pid;
  }

  /**
   * Writes are corked and flushed once per event-loop turn, so messages that arrive together
   * cost one write system call. An upstream that stops reading cannot make the gateway queue
   * without bound: past the cap, send refuses and the caller fails the request at once.
   */
  send(message: JsonRpcMessage): boolean {
    if (this.closed) return false;
    const stdin = this.process.child.stdin;
    if (stdin.writableLength > this.maxQueuedInputBytes) return false;
    if (!this.corked) {
      this.corked = true;
      stdin.cork();
      setImmediate(this.flush);
    }
    stdin.write(`${JSON.stringify(message)}\n`);
    return true;
  }

  private readonly flush = (): void => {
    this.corked = false;
    this.process.child.stdin.uncork();
  };

  async close(): Promise<void> {
    if (this.closed) return;
    const child: ChildProcessWithoutNullStreams = this.process.child;
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    child.stdin.end();
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      this.onForcedKill(KILL_GRACE_MS);
    }, KILL_GRACE_MS);
    await exited;
    clearTimeout(timer);
    this.finish('closed by the gateway');
  }

  private receive(line: string, bytes: number): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      this.onProtocolViolation('garbage', `non-JSON output on stdout: ${JSON.stringify(line.slice(0, 120))}`, bytes, line.slice(0, 4096));
      return;
    }
    this.onMessage(parsed, bytes);
  }

  private finish(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    void this.process.dispose();
    this.onClose(reason);
  }
}
