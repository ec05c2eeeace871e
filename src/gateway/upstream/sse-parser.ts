// A bounded parser for text/event-stream (WHATWG HTML, "Server-sent events"): lines end in
// CRLF, LF or CR; `field: value` lines build an event; a blank line dispatches it. Nothing it
// holds grows past `maxEventBytes`: a longer line or event is dropped whole and reported, so a
// hostile server cannot make the gateway buffer without bound.

export interface SseEvent {
  /** The event type; `message` when the server named none. */
  event: string;
  data: string;
  /** Bytes of the event on the wire (its field lines). */
  bytes: number;
}

export interface SseParserHandlers {
  onEvent: (event: SseEvent) => void;
  /** An event (or one line) over the cap was dropped; `bytes` is how much was seen of it. */
  onOversize: (bytes: number) => void;
}

export class SseParser {
  private line = '';
  private lineBytes = 0;
  private type = '';
  private data: string[] = [];
  private eventBytes = 0;
  /** The current event went over the cap: skip to its end. */
  private dropping = false;
  /** The last chunk ended in CR: an LF at the start of the next one belongs to it. */
  private afterCr = false;

  constructor(
    private readonly maxEventBytes: number,
    private readonly handlers: SseParserHandlers,
  ) {}

  push(chunk: string): void {
    let start = 0;
    for (let index = 0; index < chunk.length; index += 1) {
      const char = chunk.charCodeAt(index);
      if (char !== 10 && char !== 13) continue;
      if (char === 10 && this.afterCr && index === start && this.line === '') {
        this.afterCr = false;
        start = index + 1;
        continue;
      }
      this.append(chunk.slice(start, index));
      this.endLine();
      this.afterCr = char === 13;
      if (char === 13 && chunk.charCodeAt(index + 1) === 10) index += 1;
      start = index + 1;
    }
    if (start < chunk.length) {
      this.afterCr = false;
      this.append(chunk.slice(start));
    }
  }

  private append(text: string): void {
    if (text === '') return;
    this.lineBytes += Buffer.byteLength(text);
    // While dropping, only the length is kept: the blank line that ends the event has length 0.
    if (this.dropping) return;
    if (this.eventBytes + this.lineBytes > this.maxEventBytes) {
      this.drop();
      return;
    }
    this.line += text;
  }

  private drop(): void {
    this.dropping = true;
    this.line = '';
    this.data = [];
  }

  private endLine(): void {
    const line = this.line;
    const bytes = this.lineBytes;
    this.line = '';
    this.lineBytes = 0;
    if (this.dropping) {
      this.eventBytes += bytes + 1;
      if (bytes === 0) this.finishDropped();
      return;
    }
    if (line === '') return this.dispatch();
    this.eventBytes += bytes + 1;
    if (line.startsWith(':')) return; // a comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.type = value;
    else if (field === 'data') this.data.push(value);
    // id and retry are not used: the gateway never reconnects a dead stream (the connection restarts).
  }

  private finishDropped(): void {
    const seen = this.eventBytes;
    this.dropping = false;
    this.reset();
    this.handlers.onOversize(seen);
  }

  private dispatch(): void {
    const event: SseEvent = { event: this.type === '' ? 'message' : this.type, data: this.data.join('\n'), bytes: this.eventBytes };
    const empty = this.data.length === 0;
    this.reset();
    if (!empty) this.handlers.onEvent(event);
  }

  private reset(): void {
    this.type = '';
    this.data = [];
    this.eventBytes = 0;
  }
}
