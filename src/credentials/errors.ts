import { randomUUID } from 'node:crypto';

/**
 * The agent's user must act before this upstream can be used: consent (again) at the link, or
 * sign in to Bastion again (token exchange). Carried to the client as a JSON-RPC error whose
 * message says what to do and whose `data` has the link; never answered by a shared identity.
 */
export class UpstreamAuthorizationRequired extends Error {
  constructor(
    readonly server: string,
    message: string,
    readonly reason: 'consent_required' | 'refresh_failed' | 'exchange_failed' | 'no_subject_token' | 'vault_error' | 'discovery_failed',
    readonly consentUrl?: string,
    /** The client declared URL-mode elicitation (MCP 2025-11-25): the error is then the spec's URLElicitationRequired. */
    readonly urlElicitation = false,
  ) {
    super(message);
    this.name = 'UpstreamAuthorizationRequired';
  }

  /** The same error for a client that does (or does not) support URL-mode elicitation. */
  forClient(urlElicitation: boolean): UpstreamAuthorizationRequired {
    return new UpstreamAuthorizationRequired(this.server, this.message, this.reason, this.consentUrl, urlElicitation);
  }

  /**
   * The JSON-RPC error: -32042 URLElicitationRequired with the link as a URL elicitation when
   * the client supports it (the client then opens it for its user), else -32018 with the
   * link in `data.consent_url`. The message says what to do either way.
   */
  errorBody(): { code: number; message: string; data: Record<string, unknown> } {
    if (this.urlElicitation && this.consentUrl !== undefined) {
      return {
        code: URL_ELICITATION_REQUIRED_CODE,
        message: this.message,
        data: { ...this.data, elicitations: [{ mode: 'url', elicitationId: randomUUID(), url: this.consentUrl, message: `Authorize Bastion to use server '${this.server}' for you` }] },
      };
    }
    return { code: AUTHORIZATION_REQUIRED_CODE, message: this.message, data: this.data };
  }

  /** The `data` of the JSON-RPC error (a stable reason, the server, and the link when there is one). */
  get data(): Record<string, string> {
    return { reason: 'upstream_authorization_required', detail: this.reason, server: this.server, ...(this.consentUrl === undefined ? {} : { consent_url: this.consentUrl }) };
  }
}

/** The JSON-RPC error code for an upstream that needs the user's authorization (implementation-defined range). */
export const AUTHORIZATION_REQUIRED_CODE = -32018;

/** MCP 2025-11-25: the request needs the user to complete a URL-mode elicitation first. */
export const URL_ELICITATION_REQUIRED_CODE = -32042;
