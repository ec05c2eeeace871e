// Loaded only by createTracing (dynamic import) when observability.tracing.enabled is true: with
// tracing off, no OpenTelemetry module is ever loaded.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, defaultTextMapSetter, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { ErrorCode, type CallContext, type CallTrace, type Guard, type Next, type Outcome, type UpstreamCallTrace } from '../../pipeline/index.js';
import type { Logger } from '../log.js';
import { Attr, endAttributes, nameTarget, spanName, startAttributes } from './attributes.js';
import type { Tracing, TracingOptions } from './index.js';
import { remoteTraceContext } from './w3c.js';

/** Export failures are logged at most this often (a collector that is down must not flood the log). */
const FAILURE_LOG_INTERVAL_MS = 60_000;

/** The OpenTelemetry-backed tracer: a provider of its own (nothing global is registered), OTLP/HTTP protobuf export. */
export class OtelTracing implements Tracing {
  readonly tracer: Tracer;
  readonly guardSpans: boolean;
  readonly propagator = new W3CTraceContextPropagator();
  private readonly provider: BasicTracerProvider;

  constructor(options: TracingOptions) {
    const { config } = options;
    const exporter = new LoggedExporter(new OTLPTraceExporter({ url: config.endpoint, headers: options.headers, timeoutMillis: config.exportTimeoutMs }), options.logger, config.endpoint);
    // The gateway's ratio decides, also under a remote parent: a client's sampled flag cannot make
    // the gateway trace (and export) every one of its calls.
    const ratio = new TraceIdRatioBasedSampler(config.sampleRatio);
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName, [ATTR_SERVICE_VERSION]: options.version }),
      sampler: new ParentBasedSampler({ root: ratio, remoteParentSampled: ratio, remoteParentNotSampled: ratio }),
      spanProcessors: [new BatchSpanProcessor(exporter, { exportTimeoutMillis: config.exportTimeoutMs })],
    });
    this.tracer = this.provider.getTracer('bastion', options.version);
    this.guardSpans = config.guardSpans;
  }

  guard(): Guard {
    return { name: 'tracing', handle: (ctx, next) => this.traceRequest(ctx, next) };
  }

  async flush(): Promise<void> {
    await this.provider.forceFlush();
  }

  async shutdown(): Promise<void> {
    await this.provider.shutdown();
  }

  /** The SERVER span of one client request; the guards inside the chain become its children. */
  private async traceRequest(ctx: CallContext, next: Next): Promise<Outcome> {
    const remote = remoteTraceContext(ctx);
    const parent = remote === undefined ? ROOT_CONTEXT : this.propagator.extract(ROOT_CONTEXT, remote, defaultTextMapGetter);
    const span = this.tracer.startSpan(ctx.method, { kind: SpanKind.SERVER, attributes: startAttributes(ctx) }, parent);
    ctx.trace = new RequestTrace(this, span, parent);
    let outcome: Outcome | undefined;
    try {
      outcome = await next(ctx);
      return outcome;
    } catch (error) {
      span.recordException(error instanceof Error ? error : String(error));
      throw error;
    } finally {
      if (span.isRecording()) {
        span.updateName(spanName(ctx.method, nameTarget(ctx)));
        span.setAttributes(endAttributes(ctx, outcome));
        if (outcome?.ok !== true) span.setStatus({ code: SpanStatusCode.ERROR, message: ctx.audit.decision === 'deny' ? 'denied' : 'error' });
      }
      span.end();
    }
  }
}

/** One request's trace: which span is the parent of the next guard, and the upstream call. */
class RequestTrace implements CallTrace {
  readonly traceId: string;
  /** The innermost open span: the next guard's span (or the upstream call) is its child. */
  private current: Context;

  constructor(
    private readonly owner: OtelTracing,
    private readonly span: Span,
    parent: Context,
  ) {
    this.traceId = span.spanContext().traceId;
    this.current = trace.setSpan(parent, span);
  }

  async guard(guard: Guard, ctx: CallContext, next: Next): Promise<Outcome> {
    if (!this.owner.guardSpans) return this.guardEvent(guard, ctx, next);
    const parent = this.current;
    const span = this.owner.tracer.startSpan(`bastion.guard ${guard.name}`, { kind: SpanKind.INTERNAL, attributes: { [Attr.GuardName]: guard.name } }, parent);
    this.current = trace.setSpan(parent, span);
    let passed = false;
    try {
      const outcome = await guard.handle(ctx, (inner) => {
        passed = true;
        return next(inner);
      });
      span.setAttribute(Attr.GuardDecision, guardDecision(passed, outcome));
      return outcome;
    } catch (error) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
      this.current = parent;
    }
  }

  upstreamCall(server: string, method: string, tool: string | undefined): UpstreamCallTrace {
    const attributes: Record<string, string> = { [Attr.McpMethodName]: method, [Attr.Server]: server };
    if (tool !== undefined) attributes[Attr.GenAiToolName] = tool;
    const span = this.owner.tracer.startSpan(spanName(method, tool), { kind: SpanKind.CLIENT, attributes }, this.current);
    const meta: Record<string, string> = {};
    this.owner.propagator.inject(trace.setSpan(this.current, span), meta, defaultTextMapSetter);
    return {
      meta,
      end: (errorCode) => {
        if (errorCode !== undefined) {
          span.setAttributes({ [Attr.RpcResponseStatusCode]: String(errorCode), [Attr.ErrorType]: errorCode === ErrorCode.RequestTimeout ? 'timeout' : String(errorCode) });
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span.end();
      },
    };
  }

  /** The cheaper form: one event per guard on the request span instead of a span each. */
  private async guardEvent(guard: Guard, ctx: CallContext, next: Next): Promise<Outcome> {
    let passed = false;
    const outcome = await guard.handle(ctx, (inner) => {
      passed = true;
      this.span.addEvent('bastion.guard', { [Attr.GuardName]: guard.name, [Attr.GuardDecision]: 'pass' });
      return next(inner);
    });
    if (!passed) this.span.addEvent('bastion.guard', { [Attr.GuardName]: guard.name, [Attr.GuardDecision]: guardDecision(false, outcome) });
    return outcome;
  }
}

/** pass: called the next guard; deny: refused the request itself; answer: answered it itself. */
function guardDecision(passed: boolean, outcome: Outcome): string {
  return passed ? 'pass' : outcome.ok ? 'answer' : 'deny';
}

/** Logs failed exports (throttled); spans that could not be exported are dropped, calls never wait for them. */
class LoggedExporter implements SpanExporter {
  private failures = 0;
  private lastLogged = 0;

  constructor(
    private readonly inner: SpanExporter,
    private readonly logger: Logger,
    private readonly endpoint: string,
  ) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) {
        this.failures += 1;
        const now = Date.now();
        if (now - this.lastLogged >= FAILURE_LOG_INTERVAL_MS) {
          this.lastLogged = now;
          this.logger.warn({ endpoint: this.endpoint, failures: this.failures, spans: spans.length, err: result.error?.message }, 'trace export failed; those spans are dropped');
        }
      }
      resultCallback(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
