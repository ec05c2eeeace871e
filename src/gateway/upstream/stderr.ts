import type { Logger } from '../../observability/index.js';

/** Longest stderr line logged; the rest of a longer line is cut. */
export const STDERR_LINE_LIMIT = 4096;
/** stderr lines logged per server per second; more are counted and the count is logged. */
export const STDERR_LINES_PER_SECOND = 50;

interface Window {
  startedAt: number;
  logged: number;
  dropped: number;
}

/** Per server name, shared by every session's copy of the server, so N sessions cannot multiply the cap. */
const windows = new Map<string, Window>();

/**
 * A server's stderr is its log: each line goes to the operational log at info, tagged with the
 * server. A server that writes without end cannot flood the log or the disk: past the per-second
 * cap, lines are dropped and counted, and the count is logged when the next second begins.
 */
export class StderrLog {
  private partial = '';

  constructor(
    private readonly server: string,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  push(chunk: Buffer): void {
    const text = this.partial + chunk.toString('utf8');
    const lines = text.split('\n');
    this.partial = (lines.pop() ?? '').slice(0, STDERR_LINE_LIMIT);
    for (const line of lines) this.line(line);
  }

  /** Logs what is left of an unterminated last line (the process ended). */
  flush(): void {
    if (this.partial.length > 0) this.line(this.partial);
    this.partial = '';
  }

  private line(raw: string): void {
    const line = raw.replace(/\r$/, '').slice(0, STDERR_LINE_LIMIT);
    if (line.trim().length === 0) return;
    const time = this.now();
    let window = windows.get(this.server);
    if (window === undefined || time - window.startedAt >= 1000) {
      if (window !== undefined && window.dropped > 0) this.logger.warn({ server: this.server, dropped: window.dropped }, `upstream stderr: ${window.dropped} line(s) dropped over the ${STDERR_LINES_PER_SECOND}-lines-per-second cap`);
      window = { startedAt: time, logged: 0, dropped: 0 };
      windows.set(this.server, window);
    }
    if (window.logged >= STDERR_LINES_PER_SECOND) {
      window.dropped += 1;
      return;
    }
    window.logged += 1;
    this.logger.info({ server: this.server, stderr: line }, 'upstream stderr');
  }
}
