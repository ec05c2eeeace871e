/**
 * Protocol revisions Bastion negotiates through initialize, on both sides, newest first. The
 * stateless 2026-07-28 revision (no initialize) is served by src/gateway/stateless/.
 */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly string[] = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'];

export const LATEST_PROTOCOL_VERSION = '2025-11-25';

/** The version to answer a client's initialize with: its own if supported, else the latest. */
export function negotiateProtocolVersion(requested: unknown): string {
  return typeof requested === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(requested) ? requested : LATEST_PROTOCOL_VERSION;
}
