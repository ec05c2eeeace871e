import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CallContext, Guard, Next, Outcome } from '../pipeline/index.js';

/** Figures read when Prometheus scrapes, from the parts that own them. */
export interface MetricSources {
  /** Open client sessions by transport. */
  sessions(): { transport: string; count: number }[];
  /** The audit writer's counters since start. */
  audit(): { records: number; batches: number; syncMillis: number; largestBatch: number; dropped: number; onMainThread?: boolean; moves?: number };
  /** Audit sinks (audit.sinks): shipped, failed and resent counts and lag, per sink. */
  shipping?(): { sink: string; type: string; shipped: number; checkpointsShipped: number; failures: number; resent: number; lagRecords: number; lagSeconds: number; lostToRetention: number; newChains?: number; rejected?: number }[];
}

export interface MetricsOptions {
  agentLabel: boolean;
  sources: MetricSources;
}

/** Only short machine-made reason codes become label values; anything else is 'other'. */
const REASON_CODE = /^[a-z][a-z0-9_]{0,39}$/;
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

function labelOf(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : fallback;
}

/**
 * The gateway's Prometheus metrics. Calls are counted by the metrics guard (outermost, so it sees
 * every outcome, the audit guard's own refusals included); lifecycle figures come from the audit
 * events everything else already emits, so no module needs to know metrics exist.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'method' | 'server' | 'tool' | 'agent' | 'decision'>;
  private readonly duration: Histogram<'method' | 'server' | 'decision'>;
  private readonly upstreamDuration: Histogram<'server'>;
  private readonly denials: Counter<'denied_by' | 'reason' | 'rule'>;
  private readonly events: Counter<'event' | 'server'>;
  private readonly breakerOpen: Gauge<'breaker' | 'target'>;

  constructor(private readonly options: MetricsOptions) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'bastion_' });
    this.requests = new Counter({ name: 'bastion_requests_total', help: 'Client requests by method, server, tool, agent and decision (allow, deny, error).', labelNames: ['method', 'server', 'tool', 'agent', 'decision'], registers });
    this.duration = new Histogram({ name: 'bastion_request_duration_seconds', help: 'Time from a request entering the guard chain to its answer, audit commit included.', labelNames: ['method', 'server', 'decision'], buckets: LATENCY_BUCKETS, registers });
    this.upstreamDuration = new Histogram({ name: 'bastion_upstream_duration_seconds', help: 'Time an upstream server took to answer a forwarded request.', labelNames: ['server'], buckets: LATENCY_BUCKETS, registers });
    this.denials = new Counter({ name: 'bastion_denials_total', help: 'Denied requests by the guard that denied them, its reason code and (for quotas) the rule.', labelNames: ['denied_by', 'reason', 'rule'], registers });
    this.events = new Counter({ name: 'bastion_events_total', help: 'Audit events outside requests (upstream start, restart, down, quarantine, breaker, inspection verdicts, ...) by type and server.', labelNames: ['event', 'server'], registers });
    this.breakerOpen = new Gauge({ name: 'bastion_breaker_open', help: 'Circuit breakers: 1 while open or half-open, 0 when closed.', labelNames: ['breaker', 'target'], registers });
    const { sources } = options;
    new Gauge({
      name: 'bastion_sessions',
      help: 'Open client sessions by transport.',
      labelNames: ['transport'],
      registers,
      collect() {
        this.reset();
        for (const { transport, count } of sources.sessions()) this.set({ transport }, count);
      },
    });
    const auditGauge = (name: string, help: string, read: (stats: ReturnType<MetricSources['audit']>) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read(sources.audit()));
        },
      });
    };
    auditGauge('bastion_audit_records', 'Audit records appended since start (a counter read from the writer).', (stats) => stats.records);
    auditGauge('bastion_audit_batches', 'Synced audit write batches since start.', (stats) => stats.batches);
    auditGauge('bastion_audit_sync_seconds', 'Wall time spent in synced audit writes since start.', (stats) => stats.syncMillis / 1000);
    auditGauge('bastion_audit_largest_batch', 'Largest audit batch written since start.', (stats) => stats.largestBatch);
    auditGauge('bastion_audit_dropped', 'Audit records dropped by the async writer since start (0 in durable mode).', (stats) => stats.dropped);
    auditGauge('bastion_audit_writer_on_main_thread', '1 while the gateway\'s main thread writes the audit log (audit.writer: adaptive with calls one at a time, or inline), 0 while its writer thread does.', (stats) => (stats.onMainThread === true ? 1 : 0));
    auditGauge('bastion_audit_writer_moves', 'Times the audit log moved between the writer thread and the main thread since start (audit.writer: adaptive).', (stats) => stats.moves ?? 0);
    type SinkFigures = NonNullable<ReturnType<NonNullable<MetricSources['shipping']>>>[number];
    const sinkGauge = (name: string, help: string, read: (sink: SinkFigures) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['sink', 'type'],
        registers,
        collect() {
          this.reset();
          for (const sink of sources.shipping?.() ?? []) this.set({ sink: sink.sink, type: sink.type }, read(sink));
        },
      });
    };
    sinkGauge('bastion_audit_ship_lag_records', 'Committed audit records a sink has not yet confirmed.', (sink) => sink.lagRecords);
    sinkGauge('bastion_audit_ship_lag_seconds', 'Age of the oldest committed audit record a sink has not yet confirmed (0 when caught up).', (sink) => sink.lagSeconds);
    sinkGauge('bastion_audit_shipped_records', 'Audit records a sink confirmed since start (a counter read from the shipper).', (sink) => sink.shipped);
    sinkGauge('bastion_audit_shipped_checkpoints', 'Signed checkpoints a sink confirmed since start (witness copies).', (sink) => sink.checkpointsShipped);
    sinkGauge('bastion_audit_ship_failures', 'Failed deliveries to a sink since start (each retried with backoff).', (sink) => sink.failures);
    sinkGauge('bastion_audit_ship_resent_records', 'Audit records sent to a sink again after a failure since start (possible duplicates at the receiver).', (sink) => sink.resent);
    sinkGauge('bastion_audit_ship_lost_to_retention', 'Audit records retention deleted before a sink received them.', (sink) => sink.lostToRetention);
    sinkGauge('bastion_audit_ship_rejected_records', 'Audit records a sink accepted the delivery of but rejected for good (OTLP partial success); not sent to it again.', (sink) => sink.rejected ?? 0);
    sinkGauge('bastion_audit_ship_new_chains', 'Times a sink found the log restarted as a new chain (tamper restart) and shipped it from its start.', (sink) => sink.newChains ?? 0);
  }

  /** The outermost guard: times and counts every request with its final decision. */
  guard(): Guard {
    return { name: 'metrics', handle: (ctx, next) => this.observe(ctx, next) };
  }

  private async observe(ctx: CallContext, next: Next): Promise<Outcome> {
    let outcome: Outcome | undefined;
    try {
      outcome = await next(ctx);
      return outcome;
    } finally {
      this.count(ctx, outcome);
    }
  }

  private count(ctx: CallContext, outcome: Outcome | undefined): void {
    const decision = ctx.audit.decision ?? (outcome?.ok === true ? 'allow' : 'error');
    const server = ctx.target?.server ?? '';
    const tool = ctx.method === 'tools/call' ? (ctx.target?.name ?? '') : '';
    const agent = this.options.agentLabel ? (ctx.identity?.agentId ?? '') : '';
    this.requests.inc({ method: ctx.method, server, tool, agent, decision });
    this.duration.observe({ method: ctx.method, server, decision }, (performance.now() - ctx.startedAt) / 1000);
    if (ctx.audit.upstreamDurationMs !== undefined) this.upstreamDuration.observe({ server }, ctx.audit.upstreamDurationMs / 1000);
    if (decision === 'deny') {
      const reason = ctx.audit.reason !== undefined && REASON_CODE.test(ctx.audit.reason) ? ctx.audit.reason : 'other';
      const data = outcome !== undefined && !outcome.ok && typeof outcome.error.data === 'object' && outcome.error.data !== null ? (outcome.error.data as Record<string, unknown>) : {};
      this.denials.inc({ denied_by: ctx.audit.deniedBy ?? '', reason, rule: labelOf(data['limit']) });
    }
  }

  /** Counts an audit event; breaker transitions also move the breaker gauge. */
  observeEvent(type: string, info: Record<string, unknown>): void {
    this.events.inc({ event: type, server: labelOf(info['server']) });
    if (type === 'limits.breaker') {
      const labels = { breaker: labelOf(info['breaker']), target: labelOf(info['target']) };
      this.breakerOpen.set(labels, info['to'] === 'closed' ? 0 : 1);
    }
  }
}
