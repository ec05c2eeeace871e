// The contexts stateless requests are served in: one per agent and set of client capabilities,
// each owning an internal GatewaySession (kept warm, idle-expired, capped per agent and in total,
// the least recently used idle one evicted first).
import { createHash, randomBytes } from 'node:crypto';
import type { Identity } from '../../pipeline/index.js';
import { LATEST_PROTOCOL_VERSION } from '../protocol.js';
import { GatewaySession, type GatewayRuntime } from '../session.js';
import { AgentContext, type HeldCall } from './agent-context.js';
import { STATELESS_PROTOCOL_VERSION, stampResult, type Envelope } from './envelope.js';

export interface ContextLimits {
  transport: 'stdio' | 'http';
  /** Contexts one agent may hold at once (one per distinct set of client capabilities). */
  maxContextsPerAgent: number;
  /** Contexts in total. */
  maxContexts: number;
  /** An idle context (no call, no stream) is closed after this long. */
  idleMs: number;
}

/** What the table asks of the front for the contexts it makes. */
export interface ContextOwner {
  inputRequired(context: AgentContext, call: HeldCall): void;
  serverInfo(): Record<string, unknown>;
  /** A context is closing: what refers to it elsewhere (requestStates) is dropped. */
  closing(context: AgentContext): void;
  shuttingDown(): boolean;
}

/** Why no context could be had (the client gets the message). */
export class ContextRefused extends Error {}

/** Canonical JSON (sorted keys), so equal capabilities give one context key whatever their order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') return `{${Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`).join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

export class ContextTable {
  readonly contexts = new Map<string, AgentContext>();
  private readonly starting = new Map<string, Promise<AgentContext>>();

  constructor(
    private readonly runtime: GatewayRuntime,
    private readonly limits: ContextLimits,
    private readonly owner: ContextOwner,
  ) {}

  get size(): number {
    return this.contexts.size;
  }

  /** The context for this agent and these capabilities, started on first use. */
  async contextFor(identity: Identity, envelope: Envelope): Promise<AgentContext> {
    const digest = createHash('sha256').update(canonical(envelope.clientCapabilities)).digest('base64url').slice(0, 22);
    const key = `${identity.agentId}\u0000${envelope.protocolVersion}\u0000${digest}`;
    const existing = this.contexts.get(key);
    if (existing !== undefined) return existing;
    const pending = this.starting.get(key);
    if (pending !== undefined) return pending;
    this.admit(identity.agentId);
    const started = this.createContext(key, identity, envelope).finally(() => this.starting.delete(key));
    this.starting.set(key, started);
    return started;
  }

  /** Closes contexts idle for longer than `idleMs`. */
  sweep(now: number): void {
    for (const [key, context] of this.contexts) {
      if (!context.busy && now - context.lastUsed > this.limits.idleMs) void this.closeContext(key, 'expired');
    }
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.starting.values()]);
    await Promise.all([...this.contexts.keys()].map((key) => this.closeContext(key, 'shutdown')));
  }

  /** Makes room for one more context of `agentId`, or throws why there is none. */
  private admit(agentId: string): void {
    const all = [...this.contexts.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    const own = all.filter(([, context]) => context.agentId === agentId);
    const startingOwn = [...this.starting.keys()].filter((key) => key.startsWith(`${agentId}\u0000`)).length;
    if (own.length + startingOwn >= this.limits.maxContextsPerAgent) {
      const victim = own.find(([, context]) => !context.busy);
      if (victim === undefined) throw new ContextRefused(`agent ${agentId} holds its limit of ${this.limits.maxContextsPerAgent} stateless contexts, all busy; retry later`);
      void this.closeContext(victim[0], 'evicted');
      return;
    }
    if (all.length + this.starting.size >= this.limits.maxContexts) {
      const victim = all.find(([, context]) => !context.busy);
      if (victim === undefined) throw new ContextRefused(`the gateway is at its limit of ${this.limits.maxContexts} stateless contexts, all busy; retry later`);
      void this.closeContext(victim[0], 'evicted');
    }
  }

  private async createContext(key: string, identity: Identity, envelope: Envelope): Promise<AgentContext> {
    const context = new AgentContext(key, identity.agentId, {
      inputRequired: (call) => this.owner.inputRequired(context, call),
      stamp: (method, result) => stampResult(method, result, this.owner.serverInfo()),
    });
    const sessionId = `stateless-${randomBytes(16).toString('base64url')}`;
    const session = new GatewaySession(this.runtime, context, { transport: this.limits.transport, sessionId });
    context.session = session;
    const clientName = typeof envelope.clientInfo['name'] === 'string' ? envelope.clientInfo['name'] : 'a stateless client';
    // Upstreams are initialized statefully with the newest stateful revision; the client's
    // capabilities decide (as for any session) which server-to-client requests may reach it.
    const outcome = await session.initialize({ protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: envelope.clientCapabilities, clientInfo: { name: clientName, version: String(envelope.clientInfo['version'] ?? '') } });
    session.owner = identity;
    // The audit records of this session carry the client's revision, not the upstreams'.
    session.protocolVersion = envelope.protocolVersion;
    if (outcome.ok) context.initializeResult = outcome.result as Record<string, unknown>;
    if (this.owner.shuttingDown()) {
      await session.close();
      throw new ContextRefused('the gateway is shutting down');
    }
    this.contexts.set(key, context);
    this.runtime.events('session.created', { session_id: sessionId, agent: identity.agentId, remote: null, transport: this.limits.transport, protocol_version: envelope.protocolVersion });
    return context;
  }

  private async closeContext(key: string, reason: 'expired' | 'evicted' | 'shutdown'): Promise<void> {
    const context = this.contexts.get(key);
    if (context === undefined) return;
    this.contexts.delete(key);
    this.owner.closing(context);
    this.runtime.events('session.closed', { session_id: context.session.sessionId, agent: context.agentId, reason, calls: 0, transport: this.limits.transport, protocol_version: STATELESS_PROTOCOL_VERSION });
    for (const listener of context.listeners) listener.responder.send({ jsonrpc: '2.0', id: listener.subscriptionId, result: { resultType: 'complete', _meta: { 'io.modelcontextprotocol/subscriptionId': listener.subscriptionId } } }, true);
    context.listeners.clear();
    await context.session.close();
  }
}
