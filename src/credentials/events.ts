/** Audit events of upstream identity: consent, exchange, refresh, failure. Never a token value. */
export type CredentialEvents = (event: string, info: Record<string, string | number | boolean | null>) => void;
