// Request and answer plumbing of the admin API: JSON answers with security headers, JSON bodies
// read under a byte cap and checked against a schema (ajv), and the CSRF checks every
// state-changing request passes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Ajv, type ValidateFunction } from 'ajv';

/** A request the API refuses: the status and a message that says what to do. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Headers on every API answer: never cached, never sniffed, never framed. */
export const API_HEADERS = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', 'X-Frame-Options': 'DENY', 'Referrer-Policy': 'no-referrer' } as const;

export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', ...API_HEADERS, ...headers });
  response.end(`${JSON.stringify(body)}\n`);
}

/** The largest JSON body any endpoint accepts (an explain request with its arguments is the biggest). */
export const MAX_BODY_BYTES = 64 * 1024;

const ajv = new Ajv({ allErrors: false, strict: true });

/** Compiles a body schema once; the returned function throws ApiError 400 naming the bad field. */
export function bodyValidator<T>(schema: Record<string, unknown>): (value: unknown) => T {
  const validate: ValidateFunction = ajv.compile(schema);
  return (value) => {
    if (validate(value)) return value as T;
    const error = validate.errors?.[0];
    const field = error === undefined ? '' : error.instancePath === '' ? 'the body' : `body${error.instancePath.replaceAll('/', '.')}`;
    const extra = error?.keyword === 'additionalProperties' ? ` ('${String((error.params as { additionalProperty?: unknown }).additionalProperty)}')` : '';
    throw new ApiError(400, `invalid request: ${field} ${error?.message ?? 'is invalid'}${extra}`);
  };
}

/** Reads a JSON body of at most MAX_BODY_BYTES; an empty body is `{}`. */
export async function readJsonBody(request: IncomingMessage): Promise<unknown> {
  const declared = Number(request.headers['content-length'] ?? '0');
  if (declared > MAX_BODY_BYTES) throw new ApiError(413, `the body is over ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      request.destroy();
      throw new ApiError(413, `the body is over ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim().length === 0) return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ApiError(400, `the body is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * CSRF: a state-changing request must carry the operator's token in the Authorization header
 * (checked by the caller; browsers never add it on their own, unlike a cookie), be declared as
 * JSON (a cross-site form cannot send that without a CORS preflight, which this API never
 * grants), and, when the browser names its origin, come from the listener's own origin.
 */
export function checkCsrf(request: IncomingMessage): void {
  const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') throw new ApiError(415, 'state-changing requests must send Content-Type: application/json');
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') throw new ApiError(403, `cross-site request refused (Sec-Fetch-Site: ${site})`);
  const origin = request.headers.origin;
  if (origin === undefined) return;
  const host = request.headers.host;
  if (host === undefined || (origin !== `http://${host}` && origin !== `https://${host}`)) throw new ApiError(403, `cross-origin request refused: Origin ${origin} is not this listener`);
}

/** A whole number query parameter within [min, max], or the fallback when absent. */
export function intParam(params: URLSearchParams, name: string, fallback: number | undefined, min: number, max: number): number | undefined {
  const raw = params.get(name);
  if (raw === null || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new ApiError(400, `query parameter ${name} must be a whole number, got '${raw.slice(0, 40)}'`);
  const value = Number(raw);
  if (value < min || value > max) throw new ApiError(400, `query parameter ${name} must be from ${min} to ${max}`);
  return value;
}

/** A date query parameter (ISO 8601), or undefined when absent. */
export function dateParam(params: URLSearchParams, name: string): Date | undefined {
  const raw = params.get(name);
  if (raw === null || raw === '') return undefined;
  const value = new Date(raw);
  if (Number.isNaN(value.getTime())) throw new ApiError(400, `query parameter ${name} must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z`);
  return value;
}
