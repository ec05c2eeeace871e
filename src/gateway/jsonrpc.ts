import { ErrorCode, type JsonRpcErrorBody } from '../pipeline/index.js';

export type JsonRpcId = string | number;

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id: JsonRpcId;
  method: string;
  params?: Record<string, unknown>;
}

export interface JsonRpcNotification {
  jsonrpc: '2.0';
  method: string;
  params?: Record<string, unknown>;
}

export interface JsonRpcSuccess {
  jsonrpc: '2.0';
  id: JsonRpcId;
  result: unknown;
}

export interface JsonRpcFailure {
  jsonrpc: '2.0';
  id: JsonRpcId | null;
  error: JsonRpcErrorBody;
}

export type JsonRpcResponse = JsonRpcSuccess | JsonRpcFailure;
export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

/** A message sorted by kind, or the reason it is not valid JSON-RPC 2.0 (with the id, when one could be read). */
export type Classified =
  | { kind: 'request'; message: JsonRpcRequest }
  | { kind: 'notification'; message: JsonRpcNotification }
  | { kind: 'response'; message: JsonRpcResponse }
  | { kind: 'invalid'; id: JsonRpcId | null; error: JsonRpcErrorBody };

function isId(value: unknown): value is JsonRpcId {
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

function invalid(id: JsonRpcId | null, message: string, code: number = ErrorCode.InvalidRequest): Classified {
  return { kind: 'invalid', id, error: { code, message } };
}

/** Sorts a parsed JSON value into request / notification / response, or says why it is invalid. */
export function classify(value: unknown): Classified {
  if (Array.isArray(value)) {
    return invalid(null, 'JSON-RPC batches are not supported (removed from MCP in protocol revision 2025-06-18); send one message per request');
  }
  if (value === null || typeof value !== 'object') return invalid(null, 'a JSON-RPC message must be a JSON object');
  const record = value as Record<string, unknown>;
  const rawId = record['id'];
  const id = isId(rawId) ? rawId : null;
  if (record['jsonrpc'] !== '2.0') return invalid(id, 'missing or wrong "jsonrpc" member: it must be "2.0"');
  if ('method' in record) {
    if (typeof record['method'] !== 'string' || record['method'] === '') return invalid(id, '"method" must be a non-empty string');
    const params = record['params'];
    if (params !== undefined && (params === null || typeof params !== 'object' || Array.isArray(params))) {
      return invalid(id, '"params" must be an object in MCP', ErrorCode.InvalidParams);
    }
    if (!('id' in record)) return { kind: 'notification', message: value as JsonRpcNotification };
    if (!isId(rawId)) return invalid(null, '"id" must be a string or a number (null is not allowed in MCP)');
    return { kind: 'request', message: value as JsonRpcRequest };
  }
  if ('result' in record || 'error' in record) {
    if ('result' in record && 'error' in record) return invalid(id, 'a response cannot carry both "result" and "error"');
    if ('error' in record) {
      const error = record['error'];
      if (error === null || typeof error !== 'object' || typeof (error as Record<string, unknown>)['code'] !== 'number') {
        return invalid(id, '"error" must be an object with a numeric "code"');
      }
    }
    if (!isId(rawId) && !(rawId === null && 'error' in record)) return invalid(null, 'a response needs the "id" of the request it answers');
    return { kind: 'response', message: value as JsonRpcResponse };
  }
  return invalid(id, 'not a request, notification or response: no "method", "result" or "error" member');
}

export function errorResponse(id: JsonRpcId | null, error: JsonRpcErrorBody): JsonRpcFailure {
  return { jsonrpc: '2.0', id, error };
}

export function parseError(detail: string): JsonRpcFailure {
  return errorResponse(null, { code: ErrorCode.ParseError, message: `parse error: ${detail}` });
}
