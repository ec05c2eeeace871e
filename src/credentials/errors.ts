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
  ) {
    super(message);
    this.name = 'UpstreamAuthorizationRequired';
  }

  /** The `data` of the JSON-RPC error (a stable reason, the server, and the link when there is one). */
  get data(): Record<string, string> {
    return { reason: 'upstream_authorization_required', detail: this.reason, server: this.server, ...(this.consentUrl === undefined ? {} : { consent_url: this.consentUrl }) };
  }
}

/** The JSON-RPC error code for an upstream that needs the user's authorization (implementation-defined range). */
export const AUTHORIZATION_REQUIRED_CODE = -32018;
