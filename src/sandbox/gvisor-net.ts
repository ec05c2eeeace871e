// Transparent egress under gVisor. gVisor's own network stack (`--network=sandbox`) cannot be
// used for it here: runsc refuses with "cannot run with network enabled in root network
// namespace" (it tests for /proc/sys/net/core/rmem_default, which kernel 6.18 has in every
// namespace), hiding that file makes the sandbox's own /proc mount fail ("error mounting proc:
// operation not permitted", /proc is then not fully visible), and the netstack never sends
// 127.0.0.0/8 out of an interface. Instead, for a server with network grants, Bastion makes a
// network namespace exactly like bwrap's (loopback, a default route through it, the nftables
// redirect to the relay), starts runsc inside it and runs it with `--network=host`: the sentry
// then opens its sockets there, so the kernel's nat rule sends every connection to the relay in
// the container and conntrack keeps the original destination for the broker. Same relay, same
// broker, same decisions and audit as under bwrap.
//
// The price: for such a server the sentry uses the host kernel's TCP/IP (in that empty
// namespace) instead of gVisor's netstack. Servers without network grants, and every server with
// `transparentEgress: off`, keep `--network=none`.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { EgressBroker } from './broker.js';
import { runFile } from './host.js';
import { originalDestination, setUpTransparentEgress, type TransparentSupport } from './netns.js';

const NETNS_DIR = '/run/netns';

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

/** Names of namespaces left by a Bastion that died before removing them (its pid is in the name). */
async function sweepStaleNamespaces(ip: string): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(NETNS_DIR).filter((name) => name.startsWith('bastion-'));
  } catch {
    return;
  }
  for (const name of names) {
    const creator = Number(/^bastion-(\d+)-[0-9a-f]+$/.exec(name)?.[1] ?? Number.NaN);
    if (!Number.isInteger(creator) || creator === process.pid || existsSync(`/proc/${creator}`)) continue;
    await runFile(ip, ['netns', 'delete', name]);
  }
}

/**
 * The network for one gVisor container: none without a broker or transparent egress, else a
 * prepared namespace. Throws (the server is refused) when the namespace cannot be set up.
 */
export async function prepareGvisorNetwork(serverName: string, broker: EgressBroker | undefined, binaries: TransparentSupport['binaries']): Promise<ContainerNetwork> {
  if (!broker || !binaries) return NO_NETWORK;
  await sweepStaleNamespaces(binaries.ip);
  const name = `bastion-${process.pid}-${randomBytes(4).toString('hex')}`;
  const added = await runFile(binaries.ip, ['netns', 'add', name]);
  if (added.code !== 0) throw new Error(`sandbox: cannot start ${serverName} under gVisor: ip netns add failed: ${added.stderr.trim() || `exit ${String(added.code)}`}`);
  const remove = async (): Promise<void> => {
    await runFile(binaries.ip, ['netns', 'delete', name]);
  };
  try {
    await setUpTransparentEgress(join(NETNS_DIR, name), binaries);
  } catch (error) {
    await remove();
    throw new Error(`sandbox: cannot start ${serverName} under gVisor: ${(error as Error).message}`, { cause: error });
  }
  let disposed: Promise<void> | undefined;
  return {
    mode: 'host',
    prefix: [binaries.nsenter, `--net=${join(NETNS_DIR, name)}`, '--'],
    // nsenter execs runsc, so the child's pid is a process in the namespace for as long as the container runs.
    started: (pid) => broker.attachNamespace((clientPort) => originalDestination(pid, clientPort)),
    dispose: () => (disposed ??= remove()),
  };
}
