/** JSON-RPC error object as sent to the client. */
export interface JsonRpcErrorBody {
  code: number;
  message: string;
  data?: unknown;
}

/** The result of running a request through the chain: a result, or an error for the client. */
export type Outcome =
  | { readonly ok: true; readonly result: unknown }
  | { readonly ok: false; readonly error: JsonRpcErrorBody };

/** JSON-RPC and MCP error codes used by Bastion. */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** Implementation-defined server errors (-32000 to -32099). */
  RequestTimeout: -32001,
  Unauthenticated: -32010,
  Forbidden: -32011,
  RateLimited: -32012,
  OutputTooLarge: -32013,
  RequestTooLarge: -32014,
  UpstreamUnavailable: -32015,
  CircuitOpen: -32016,
  Quarantined: -32017,
} as const;

export function success(result: unknown): Outcome {
  return { ok: true, result };
}

/** A denial or failure for the client. `data.reason` is a stable machine-readable reason. */
export function failure(code: number, message: string, data?: Record<string, unknown>): Outcome {
  return data === undefined ? { ok: false, error: { code, message } } : { ok: false, error: { code, message, data } };
}
