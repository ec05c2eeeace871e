import type { CallContext, Outcome } from '../../pipeline/index.js';

/**
 * Attribute names: the OpenTelemetry semantic conventions for MCP and GenAI (development status,
 * semantic-conventions-genai) where they exist, `bastion.*` for the gateway's own facts.
 */
export const Attr = {
  McpMethodName: 'mcp.method.name',
  McpSessionId: 'mcp.session.id',
  McpProtocolVersion: 'mcp.protocol.version',
  JsonRpcRequestId: 'jsonrpc.request.id',
  GenAiToolName: 'gen_ai.tool.name',
  GenAiPromptName: 'gen_ai.prompt.name',
  GenAiOperationName: 'gen_ai.operation.name',
  RpcResponseStatusCode: 'rpc.response.status_code',
  ErrorType: 'error.type',
  NetworkTransport: 'network.transport',
  AgentId: 'bastion.agent.id',
  Server: 'bastion.server',
  Decision: 'bastion.decision',
  DeniedBy: 'bastion.denied_by',
  Reason: 'bastion.reason',
  GuardName: 'bastion.guard.name',
  GuardDecision: 'bastion.guard.decision',
} as const;

/** Only machine-made reason codes go into spans; free text (which may quote the client) does not. */
const REASON_CODE = /^[a-z][a-z0-9_]{0,39}$/;
const MAX_REQUEST_ID_CHARS = 128;

/** The span name the conventions ask for: `{mcp.method.name} {target}` with a low-cardinality target. */
export function spanName(method: string, target: string | undefined): string {
  return target === undefined ? method : `${method} ${target}`;
}

/** The target in a span name: the tool or prompt (never a resource URI, which is high-cardinality and may be private). */
export function nameTarget(ctx: CallContext): string | undefined {
  return ctx.method === 'tools/call' || ctx.method === 'prompts/get' ? ctx.target?.name : undefined;
}

/** What is known when the request arrives. */
export function startAttributes(ctx: CallContext): Record<string, string> {
  const attributes: Record<string, string> = {
    [Attr.McpMethodName]: ctx.method,
    [Attr.McpSessionId]: ctx.session.sessionId,
    [Attr.JsonRpcRequestId]: String(ctx.requestId).slice(0, MAX_REQUEST_ID_CHARS),
    [Attr.NetworkTransport]: ctx.session.transport === 'stdio' ? 'pipe' : 'tcp',
  };
  if (ctx.session.protocolVersion !== undefined) attributes[Attr.McpProtocolVersion] = ctx.session.protocolVersion;
  return attributes;
}

/** What the chain decided, for the request span when it ends. */
export function endAttributes(ctx: CallContext, outcome: Outcome | undefined): Record<string, string> {
  const decision = ctx.audit.decision ?? (outcome?.ok === true ? 'allow' : 'error');
  const attributes: Record<string, string> = { [Attr.Decision]: decision };
  if (ctx.identity !== undefined) attributes[Attr.AgentId] = ctx.identity.agentId;
  if (ctx.target !== undefined) attributes[Attr.Server] = ctx.target.server;
  if (ctx.target?.name !== undefined) {
    if (ctx.method === 'tools/call') {
      attributes[Attr.GenAiToolName] = ctx.target.name;
      attributes[Attr.GenAiOperationName] = 'execute_tool';
    } else if (ctx.method === 'prompts/get') attributes[Attr.GenAiPromptName] = ctx.target.name;
  }
  if (ctx.audit.deniedBy !== undefined) attributes[Attr.DeniedBy] = ctx.audit.deniedBy;
  const reason = ctx.audit.reason ?? reasonOf(outcome);
  if (reason !== undefined && REASON_CODE.test(reason)) attributes[Attr.Reason] = reason;
  if (outcome !== undefined && !outcome.ok) {
    attributes[Attr.RpcResponseStatusCode] = String(outcome.error.code);
    attributes[Attr.ErrorType] = String(outcome.error.code);
  }
  return attributes;
}

function reasonOf(outcome: Outcome | undefined): string | undefined {
  if (outcome === undefined || outcome.ok) return undefined;
  const data = outcome.error.data;
  if (data === null || typeof data !== 'object') return undefined;
  const reason = (data as Record<string, unknown>)['reason'];
  return typeof reason === 'string' ? reason : undefined;
}
