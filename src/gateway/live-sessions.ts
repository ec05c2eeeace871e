import type { GatewaySession } from './session.js';

/**
 * The open sessions of each gateway, whatever transport made them (stdio, Streamable HTTP,
 * legacy SSE, stateless). A config reload reaches every one of them through this: servers added
 * appear in each, servers removed leave each. A session adds itself when made and leaves when
 * closed, so the set never holds a closed session.
 */
const registries = new WeakMap<object, Set<GatewaySession>>();

/** The live sessions of the gateway that owns `runtime`. */
export function liveSessions(runtime: object): Set<GatewaySession> {
  let sessions = registries.get(runtime);
  if (sessions === undefined) {
    sessions = new Set();
    registries.set(runtime, sessions);
  }
  return sessions;
}
