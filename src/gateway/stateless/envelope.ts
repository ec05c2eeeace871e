import type { JsonRpcErrorBody } from '../../pipeline/index.js';
import { SUPPORTED_PROTOCOL_VERSIONS } from '../protocol.js';

/** The stateless revision: no initialize, no session, the envelope in every request's `_meta`. */
export const STATELESS_PROTOCOL_VERSION = '2026-07-28';

/** Every revision Bastion answers, newest first (what server/discover and -32022 name). */
export const ALL_PROTOCOL_VERSIONS: readonly string[] = [STATELESS_PROTOCOL_VERSION, ...SUPPORTED_PROTOCOL_VERSIONS];

export const META = {
  protocolVersion: 'io.modelcontextprotocol/protocolVersion',
  clientCapabilities: 'io.modelcontextprotocol/clientCapabilities',
  clientInfo: 'io.modelcontextprotocol/clientInfo',
  serverInfo: 'io.modelcontextprotocol/serverInfo',
  subscriptionId: 'io.modelcontextprotocol/subscriptionId',
  logLevel: 'io.modelcontextprotocol/logLevel',
} as const;

/** Error codes of the 2026-07-28 revision (the v2 SDK's ProtocolErrorCode). */
export const StatelessErrorCode = {
  HeaderMismatch: -32020,
  MissingRequiredClientCapability: -32021,
  UnsupportedProtocolVersion: -32022,
  InvalidParams: -32602,
} as const;

/** What a stateless request declares about its client, in place of initialize. */
export interface Envelope {
  protocolVersion: string;
  clientCapabilities: Record<string, unknown>;
  clientInfo: Record<string, unknown>;
}

/** Refusal of a request before it reaches the chain: HTTP 400 with a JSON-RPC error body. */
export interface EnvelopeRefusal {
  refused: JsonRpcErrorBody;
}

/** The body field each method's Mcp-Name header mirrors. */
const NAME_FIELD: Record<string, string> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The protocol version a message's `_meta` claims, if any (how a stateless request is recognised). */
export function claimedVersion(params: Record<string, unknown> | undefined): string | undefined {
  const meta = params?.['_meta'];
  if (!isRecord(meta)) return undefined;
  const version = meta[META.protocolVersion];
  return typeof version === 'string' ? version : undefined;
}

/**
 * Reads and checks the envelope. The order matches what the v2 SDK expects of a server: a
 * missing or malformed envelope is -32602, an unknown revision -32022 naming the supported ones.
 */
export function readEnvelope(params: Record<string, unknown> | undefined): Envelope | EnvelopeRefusal {
  const meta = params?.['_meta'];
  if (!isRecord(meta) || meta[META.protocolVersion] === undefined) {
    return { refused: { code: StatelessErrorCode.InvalidParams, message: `request is missing the _meta envelope of protocol revision ${STATELESS_PROTOCOL_VERSION} (${META.protocolVersion}, ${META.clientCapabilities})` } };
  }
  const version = meta[META.protocolVersion];
  if (typeof version !== 'string' || version !== STATELESS_PROTOCOL_VERSION) {
    const requested = typeof version === 'string' ? version.slice(0, 64) : String(version);
    return { refused: { code: StatelessErrorCode.UnsupportedProtocolVersion, message: `unsupported protocol version ${JSON.stringify(requested)} in the request envelope; without initialize only ${STATELESS_PROTOCOL_VERSION} is served`, data: { supported: [STATELESS_PROTOCOL_VERSION], requested } } };
  }
  const capabilities = meta[META.clientCapabilities];
  if (!isRecord(capabilities)) {
    return { refused: { code: StatelessErrorCode.InvalidParams, message: `invalid _meta envelope: ${META.clientCapabilities} is required and must be an object` } };
  }
  const info = meta[META.clientInfo];
  if (info !== undefined && (!isRecord(info) || typeof info['name'] !== 'string' || typeof info['version'] !== 'string')) {
    return { refused: { code: StatelessErrorCode.InvalidParams, message: `invalid _meta envelope: ${META.clientInfo} must be an object with string name and version` } };
  }
  return { protocolVersion: version, clientCapabilities: capabilities, clientInfo: info ?? {} };
}

/** Decodes an Mcp-Name / Mcp-Param value: plain ASCII, or `=?base64?...?=` for anything else. */
export function decodeHeaderValue(value: string): string | undefined {
  if (!value.startsWith('=?base64?') || !value.endsWith('?=')) return value;
  const encoded = value.slice('=?base64?'.length, -2);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded)) return undefined;
  const bytes = Buffer.from(encoded, 'base64');
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  return text;
}

/** One header, or undefined when absent; a header sent twice is treated as a mismatch by the caller. */
export type HeaderLookup = (name: string) => string | string[] | undefined;

/**
 * Checks the HTTP headers against the body. Anything that routes or filters on headers (a load
 * balancer, a WAF) must see what the gateway executes, so a header that disagrees with the body
 * is refused rather than ignored: otherwise it is a smuggling vector.
 */
export function headerProblem(headers: HeaderLookup, method: string, params: Record<string, unknown> | undefined, envelopeVersion: string, isRequest: boolean): JsonRpcErrorBody | undefined {
  const mismatch = (message: string): JsonRpcErrorBody => ({ code: StatelessErrorCode.HeaderMismatch, message: `Bad Request: the request headers and body disagree: ${message}` });
  const single = (name: string): string | undefined | null => {
    const value = headers(name);
    if (Array.isArray(value)) return value.length === 1 ? value[0] : null;
    return value;
  };
  const version = single('mcp-protocol-version');
  if (version === null) return mismatch('MCP-Protocol-Version is sent more than once');
  if (version === undefined) {
    if (isRequest) return { code: StatelessErrorCode.HeaderMismatch, message: `the MCP-Protocol-Version header is required on a ${STATELESS_PROTOCOL_VERSION} request` };
  } else if (version !== envelopeVersion) {
    return mismatch(`the body envelope names protocol version ${envelopeVersion} but the MCP-Protocol-Version header names ${version.slice(0, 64)}`);
  }
  const methodHeader = single('mcp-method');
  if (methodHeader === null) return mismatch('Mcp-Method is sent more than once');
  if (methodHeader === undefined) {
    if (isRequest) return { code: StatelessErrorCode.HeaderMismatch, message: `the Mcp-Method header is required on a ${STATELESS_PROTOCOL_VERSION} request` };
  } else if (methodHeader !== method) {
    return mismatch(`the body names method ${method.slice(0, 64)} but the Mcp-Method header names ${methodHeader.slice(0, 64)}`);
  }
  const field = Object.hasOwn(NAME_FIELD, method) ? NAME_FIELD[method] : undefined;
  const nameHeader = single('mcp-name');
  if (nameHeader === null) return mismatch('Mcp-Name is sent more than once');
  if (field === undefined) {
    if (nameHeader !== undefined) return mismatch(`${method.slice(0, 64)} carries no name, but an Mcp-Name header was sent`);
    return undefined;
  }
  const bodyValue = params?.[field];
  if (nameHeader === undefined) {
    return isRequest ? { code: StatelessErrorCode.HeaderMismatch, message: `the Mcp-Name header is required on ${method} (it mirrors params.${field})` } : undefined;
  }
  const decoded = decodeHeaderValue(nameHeader);
  if (decoded === undefined) return mismatch('the Mcp-Name header carries an invalid Base64 sentinel value');
  if (typeof bodyValue !== 'string' || decoded !== bodyValue) return mismatch(`the body carries params.${field}=${JSON.stringify(typeof bodyValue === 'string' ? bodyValue.slice(0, 128) : bodyValue)} but the Mcp-Name header names ${JSON.stringify(decoded.slice(0, 128))}`);
  return undefined;
}

/** The request's params without the envelope keys (the stateful machinery behind never sees them). */
export function withoutEnvelope(params: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (params === undefined) return undefined;
  const { _meta: meta, inputResponses: _responses, requestState: _state, ...rest } = params;
  if (!isRecord(meta)) return rest;
  const kept = Object.fromEntries(Object.entries(meta).filter(([key]) => !Object.values(META).includes(key as (typeof META)[keyof typeof META])));
  return Object.keys(kept).length > 0 ? { ...rest, _meta: kept } : rest;
}

/** Methods whose results may be cached by the client (the revision's CacheableResult). */
const CACHEABLE = new Set(['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list', 'resources/read', 'server/discover']);

/**
 * How long a client may reuse a list or a read. Zero: the gateway re-lists, quarantines and
 * filters per agent at any time, and a stale list would show a tool the policy has since removed.
 */
export const CACHE_TTL_MS = 0;

/**
 * Stamps a result for a stateless client: `resultType`, the gateway's serverInfo, and for
 * cacheable methods `ttlMs` and `cacheScope: "private"`: every list is filtered per agent by the
 * policy, so a shared cache (a proxy, a CDN) must never hand one agent's list to another.
 */
export function stampResult(method: string, result: unknown, serverInfo: Record<string, unknown>): Record<string, unknown> {
  const body: Record<string, unknown> = isRecord(result) ? { ...result } : {};
  if (typeof body['resultType'] !== 'string') body['resultType'] = 'complete';
  const meta = isRecord(body['_meta']) ? { ...body['_meta'] } : {};
  meta[META.serverInfo] = serverInfo;
  body['_meta'] = meta;
  if (body['resultType'] === 'complete' && CACHEABLE.has(method)) {
    body['ttlMs'] = CACHE_TTL_MS;
    body['cacheScope'] = 'private';
  }
  return body;
}
