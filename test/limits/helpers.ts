import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';

export interface CallOutcome {
  ok: boolean;
  code?: number;
  message?: string;
  data?: Record<string, unknown>;
  text?: string;
}

/** Calls a tool and reports the JSON-RPC error as data instead of throwing. */
export async function call(client: Client, name: string, args: Record<string, unknown> = {}, meta?: Record<string, unknown>): Promise<CallOutcome> {
  try {
    const result = await client.callTool({ name, arguments: args, ...(meta === undefined ? {} : { _meta: meta }) });
    const content = (result.content ?? []) as Array<{ type: string; text?: string }>;
    return { ok: result.isError !== true, text: content.find((item) => item.type === 'text')?.text ?? '' };
  } catch (error) {
    if (error instanceof McpError) return { ok: false, code: error.code, message: error.message, data: (error.data ?? {}) as Record<string, unknown> };
    throw error;
  }
}

export { auditRecords, type LoggedRecord } from '../helpers/audit.js';

/** Resolves once `predicate` holds, checking after each event-loop turn; the test's own timeout bounds it. */
export async function until(predicate: () => boolean | Promise<boolean>, everyMs = 20): Promise<void> {
  while (!(await predicate())) await new Promise((resolve) => setTimeout(resolve, everyMs));
}
