/** An audit event from the upstream side, before the session adds its own facts. */
export type UpstreamAuditSink = (event: string, info: Record<string, string | number | boolean | null>) => void;

/**
 * Audits events that a hostile server can produce at will (protocol violations, stray
 * responses) without letting it flood the log: the first of each kind is recorded at once,
 * later ones inside the window are counted and reported with the next record of that kind.
 */
export class ThrottledReporter {
  private readonly windows = new Map<string, { until: number; suppressed: number }>();

  constructor(
    private readonly sink: UpstreamAuditSink,
    private readonly windowMs = 5000,
    private readonly now: () => number = Date.now,
  ) {}

  report(event: string, kind: string, info: Record<string, string | number | boolean | null>): void {
    const key = `${event}\u0000${kind}`;
    const time = this.now();
    const window = this.windows.get(key);
    if (window !== undefined && time < window.until) {
      window.suppressed += 1;
      return;
    }
    const suppressed = window?.suppressed ?? 0;
    this.windows.set(key, { until: time + this.windowMs, suppressed: 0 });
    this.sink(event, { ...info, kind, suppressed_before: suppressed });
  }
}
