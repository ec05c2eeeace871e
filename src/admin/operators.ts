import { createHash, timingSafeEqual } from 'node:crypto';
import { OPERATOR_ROLES, type OperatorRole, type OperatorTokenConfig } from './config.js';

export interface Operator {
  operator: string;
  role: OperatorRole;
}

/** Whether `role` may do what `needed` allows. */
export function roleAllows(role: OperatorRole, needed: OperatorRole): boolean {
  return OPERATOR_ROLES.indexOf(role) >= OPERATOR_ROLES.indexOf(needed);
}

/**
 * Operators authenticate with their own bearer tokens, never an agent's: an agent token is not
 * accepted here, and an operator token is not accepted on the MCP listener.
 */
export class OperatorTokens {
  private readonly digests: { digest: Buffer; operator: Operator }[];

  constructor(tokens: OperatorTokenConfig[]) {
    this.digests = tokens.map((token) => ({ digest: Buffer.from(token.sha256, 'hex'), operator: { operator: token.operator, role: token.role } }));
  }

  get empty(): boolean {
    return this.digests.length === 0;
  }

  /** The operator an `Authorization` header names, or undefined. Compares every entry in constant time. */
  authenticate(header: string | undefined): Operator | undefined {
    const match = /^Bearer ([A-Za-z0-9._~+/=-]{16,512})$/.exec(header ?? '');
    if (match === null) return undefined;
    const digest = createHash('sha256').update(match[1] ?? '', 'utf8').digest();
    let found: Operator | undefined;
    for (const entry of this.digests) if (timingSafeEqual(entry.digest, digest)) found = entry.operator;
    return found;
  }
}
