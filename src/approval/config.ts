// The approval section of the config: where a call that needs a human is asked about. Operators
// (console, `bastion approve`, the admin API) can always decide; `elicitation` also asks the
// client's own user through an MCP elicitation/create request, when the client declared it can.

/** `console`: operators through the admin API; `elicitation`: the client's user as well. */
export const APPROVAL_CHANNELS = ['console', 'elicitation'] as const;
export type ApprovalChannelName = (typeof APPROVAL_CHANNELS)[number];

export interface ApprovalConfig {
  channels: ApprovalChannelName[];
  /** Calls that may wait at once; one more is denied at once (fail closed). */
  maxPending: number;
}

export const approvalConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  description: 'human approval of calls (docs/admin-api.md): approval: { channels: [console, elicitation] }',
  properties: {
    channels: {
      type: 'array',
      items: { enum: [...APPROVAL_CHANNELS] },
      uniqueItems: true,
      minItems: 1,
      default: ['console'],
      description: 'console (operators decide in the console, bastion approve or the API) and, with elicitation, the client user too when the client declared the elicitation capability; the first decision wins',
    },
    maxPending: { type: 'integer', minimum: 1, maximum: 100_000, default: 1000, description: 'calls that may wait for approval at once; one more is denied at once, e.g. 1000' },
  },
} as const;
