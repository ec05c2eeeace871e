// Transparent egress under gVisor. gVisor's own network stack (`--network=sandbox`) cannot be
// used for it here: runsc refuses with "cannot run with network enabled in root network
// namespace" (it tests for /proc/sys/net/core/rmem_default, which kernel 6.18 has in every
// namespace), hiding that file makes the sandbox's own /proc mount fail ("error mounting proc:
// operation not permitted", /proc is then not fully visible), and the netstack never sends
// 127.0.0.0/8 out of an interface. Instead, for a server with network grants, Bastion prepares
// the same network namespace a bwrap server starts in (netns.ts: loopback, a default route
// through it, the nftables redirect to the relay), starts runsc inside it and runs it with
// `--network=host`: the sentry then opens its sockets there, so the kernel's nat rule sends every connection to the relay in
// the container and conntrack keeps the original destination for the broker. Same relay, same
// broker, same decisions and audit as under bwrap.
//
// The price: for such a server the sentry uses the host kernel's TCP/IP (in that empty
// namespace) instead of gVisor's netstack. Servers without network grants, and every server with
// `transparentEgress: off`, keep `--network=none`.
import type { EgressBroker } from './broker.js';
import { originalDestination, prepareEgressNamespace, type EgressNamespace, type TransparentSupport } from './netns.js';

export interface ContainerNetwork {
  /** runsc's --network. */
  mode: 'none' | 'host';
  /** The program and arguments that start runsc inside the namespace (empty: runsc directly). */
  prefix: string[];
  /** runsc is running (inside the namespace): the broker may read its connection tracking. */
  started(pid: number): void;
  /** Removes the namespace (it ends with its last process anyway; this drops its name). */
  dispose(): Promise<void>;
}

const NO_NETWORK: ContainerNetwork = { mode: 'none', prefix: [], started: () => {}, dispose: async () => {} };

/**
 * The network for one gVisor container: none without a broker or transparent egress, else a
 * prepared namespace. Throws (the server is refused) when the namespace cannot be set up.
 */
export async function prepareGvisorNetwork(serverName: string, broker: EgressBroker | undefined, binaries: TransparentSupport['binaries']): Promise<ContainerNetwork> {
  if (!broker || !binaries) return NO_NETWORK;
  let namespace: EgressNamespace;
  try {
    namespace = await prepareEgressNamespace(binaries);
  } catch (error) {
    throw new Error(`sandbox: cannot start ${serverName} under gVisor: ${(error as Error).message}`, { cause: error });
  }
  return {
    mode: 'host',
    prefix: namespace.prefix,
    // nsenter execs runsc, so the child's pid is a process in the namespace for as long as the container runs.
    started: (pid) => broker.attachNamespace((clientPort) => originalDestination(pid, clientPort)),
    dispose: namespace.dispose,
  };
}
