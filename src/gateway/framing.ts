/**
 * Newline-delimited message framing (the MCP stdio transport): bytes in, complete lines out.
 * A line longer than `maxLineBytes` is reported once through `onOverflow` and then discarded up
 * to its newline, so a flooding peer cannot make the gateway buffer without bound, and the
 * caller decides whether to answer with an error (a client) or cut the peer off (an upstream).
 */
export class LineFramer {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private discarding = false;
  private discardedBytes = 0;

  constructor(
    private readonly maxLineBytes: number,
    private readonly onLine: (line: string, bytes: number) => void,
    private readonly onOverflow: (bytes: number) => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(10, start);
      const end = newline === -1 ? chunk.length : newline;
      if (this.discarding) {
        this.discardedBytes += end - start;
        if (newline !== -1) this.discarding = false;
      } else if (this.pendingBytes + (end - start) > this.maxLineBytes) {
        this.discarding = newline === -1;
        this.discardedBytes = this.pendingBytes + (end - start);
        this.pending = [];
        this.pendingBytes = 0;
        this.onOverflow(this.discardedBytes);
      } else if (newline === -1) {
        this.pending.push(chunk.subarray(start));
        this.pendingBytes += chunk.length - start;
      } else {
        this.emit(chunk, start, newline);
      }
      if (newline === -1) return;
      start = newline + 1;
    }
  }

  private emit(chunk: Buffer, start: number, newline: number): void {
    let line: string;
    let bytes: number;
    if (this.pendingBytes === 0) {
      line = chunk.toString('utf8', start, newline);
      bytes = newline - start;
    } else {
      this.pending.push(chunk.subarray(start, newline));
      bytes = this.pendingBytes + (newline - start);
      line = Buffer.concat(this.pending, bytes).toString('utf8');
      this.pending = [];
      this.pendingBytes = 0;
    }
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.trim().length > 0) this.onLine(line, bytes);
  }
}
