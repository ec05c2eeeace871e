// Approval through the client's user: an MCP `elicitation/create` (form mode) the gateway sends
// itself. Every word of it is Bastion's: the server and tool names from the config and the
// route, the agent id from authentication, and a short summary of the call's (redacted)
// arguments, which the agent wrote. Nothing an upstream provides (its description, its
// instructions, its output) is in it, so a poisoned server cannot talk the user into saying yes.
// Only an `accept` whose `approve` is true allows the call; everything else denies it.
import type { PendingApproval } from './queue.js';

/** The elicitation's only field: a yes/no the user must tick. */
export const APPROVE_FIELD = 'approve';

const MAX_SUMMARY_CHARS = 400;
const MAX_VALUE_CHARS = 60;

/** The params of the elicitation/create for one waiting call. */
export function approvalElicitation(approval: PendingApproval): Record<string, unknown> {
  const message = [
    `Bastion security gateway: agent "${approval.agent}" wants to call tool "${approval.calledAs ?? approval.tool}" on server "${approval.server}"${approval.calledAs === undefined ? '' : ` (the server's own name for it: "${approval.tool}")`}.`,
    `Arguments: ${summarize(approval.arguments)}`,
    `This call needs a human's approval (grant ${approval.grant}). It is denied at ${approval.deadline} if nobody allows it. Approval id ${approval.id}.`,
  ].join('\n');
  return {
    mode: 'form',
    message,
    requestedSchema: {
      type: 'object',
      properties: {
        [APPROVE_FIELD]: { type: 'boolean', title: 'Allow this call', description: `Allow ${approval.agent} to run ${approval.server}.${approval.tool} once`, default: false },
      },
      required: [APPROVE_FIELD],
    },
  };
}

/** True only for `{ action: "accept", content: { approve: true } }`. */
export function userAllowed(result: Record<string, unknown>): boolean {
  const content = result['content'];
  return result['action'] === 'accept' && typeof content === 'object' && content !== null && (content as Record<string, unknown>)[APPROVE_FIELD] === true;
}

/** `key=value, ...` with long values cut, the whole cut at MAX_SUMMARY_CHARS; control characters dropped. */
export function summarize(args: unknown): string {
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return clip(JSON.stringify(args) ?? 'none', MAX_SUMMARY_CHARS);
  const entries = Object.entries(args as Record<string, unknown>);
  if (entries.length === 0) return 'none';
  return clip(entries.map(([key, value]) => `${clip(key, MAX_VALUE_CHARS)}=${clip(JSON.stringify(value) ?? 'undefined', MAX_VALUE_CHARS)}`).join(', '), MAX_SUMMARY_CHARS);
}

function clip(text: string, max: number): string {
  // eslint-disable-next-line no-control-regex -- control and direction characters could fake lines or reorder Bastion's text
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g, ' ');
  return clean.length <= max ? clean : `${clean.slice(0, max - 1)}…`;
}
