// Transparent egress: the sandbox's network namespace is set up (from the gateway side, before
// the sandbox runs anything) so that every TCP connection a server opens, to any address and
// port, lands on the in-sandbox relay's catch-all listener, and every DNS query on its stub
// resolver. The relay only forwards bytes; the broker on the gateway side recovers the original
// destination from the namespace's connection tracking table (which the kernel keeps and the
// server cannot forge), decides against the grants and connects. Nothing leaves the namespace
// any other way: it has no interface but its own loopback.
//
// The namespace is made and configured *before* the sandbox starts (`ip netns add`, then the
// sandbox's launcher is run under `nsenter --net=`), never by entering a namespace a sandbox
// runtime is still setting up: bwrap's own loopback set-up (`--unshare-net`) adds 127.0.0.1 with
// NLM_F_EXCL, and when Bastion's `ip link set lo up` won the race the kernel had already added
// that address, so bwrap died with "loopback: Failed RTM_NEWADDR". A namespace made here is also
// owned by the host's user namespace, so nothing in the sandbox holds a capability over its rules.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBinary, isRoot, runFile } from './host.js';

const NETNS_DIR = '/run/netns';

/** Inside the sandbox: the relay's proxy port (HTTPS_PROXY), catch-all port and DNS stub port. */
export const RELAY_PROXY_PORT = 3128;
export const RELAY_TRANSPARENT_PORT = 3129;
export const RELAY_DNS_PORT = 5353;
/** What /etc/resolv.conf names; the namespace's nat rule sends every DNS query to the stub anyway. */
export const SANDBOX_NAMESERVER = '127.0.0.53';

/**
 * The nftables ruleset for the sandbox's namespace. Connections to the relay's own ports are left
 * alone; every other TCP connection is redirected to the catch-all port (the destination port is
 * kept in conntrack, where the broker reads it) and every UDP datagram to port 53 to the DNS
 * stub. Other UDP has nowhere to go: the default route is the namespace's own loopback.
 */
export function transparentEgressRuleset(): string {
  const own = `{ ${RELAY_PROXY_PORT}, ${RELAY_TRANSPARENT_PORT} }`;
  return [
    'table inet bastion_egress {',
    '  chain redirect_out {',
    '    type nat hook output priority -100; policy accept;',
    `    ip daddr 127.0.0.1 tcp dport ${own} accept`,
    `    ip6 daddr ::1 tcp dport ${own} accept`,
    `    meta l4proto tcp redirect to :${RELAY_TRANSPARENT_PORT}`,
    `    udp dport 53 redirect to :${RELAY_DNS_PORT}`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export interface TransparentSupport {
  available: boolean;
  detail: string;
  binaries?: { nsenter: string; nft: string; ip: string };
}

/** Setting up another namespace's routes and nftables needs root (CAP_NET_ADMIN over it) and the tools. */
export function transparentEgressSupport(): TransparentSupport {
  const nsenter = findBinary('nsenter');
  const nft = findBinary('nft');
  const ip = findBinary('ip');
  if (!isRoot()) return { available: false, detail: 'transparent egress needs Bastion to run as root (it configures the sandbox network namespace); servers reach granted destinations through HTTPS_PROXY only' };
  if (!nsenter || !nft || !ip) {
    const missing = [!nsenter && 'nsenter (util-linux)', !nft && 'nft (nftables)', !ip && 'ip (iproute2)'].filter(Boolean).join(', ');
    return { available: false, detail: `transparent egress needs ${missing}; servers reach granted destinations through HTTPS_PROXY only` };
  }
  return { available: true, detail: 'nftables redirect in the sandbox namespace to the relay, conntrack read by the broker (bwrap; gvisor with runsc --network=host in that namespace)', binaries: { nsenter, nft, ip } };
}

/** The tools to set up transparent egress, or undefined (proxy only, with a warning); throws when it is required. */
export function transparentEgressFor(server: string, mode: 'auto' | 'require' | 'off', warnings: string[]): TransparentSupport['binaries'] {
  if (mode === 'off') return undefined;
  const support = transparentEgressSupport();
  if (support.available) return support.binaries;
  if (mode === 'require') throw new Error(`sandbox: cannot start ${server}: ${support.detail} (sandbox.transparentEgress is "require")`);
  warnings.push(`${server}: ${support.detail}`);
  return undefined;
}

/**
 * Configures the network namespace at `path`: loopback up, a default route through loopback (so
 * a connect() to any address becomes a local packet the nat rule can redirect instead of failing
 * with ENETUNREACH before any rule sees it), the ruleset.
 */
async function setUpTransparentEgress(path: string, binaries: { nsenter: string; nft: string; ip: string }): Promise<void> {
  const enter = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> => runFile(binaries.nsenter, [`--net=${path}`, '--', ...args]);
  const steps: string[][] = [
    [binaries.ip, 'link', 'set', 'lo', 'up'],
    // With an explicit source: without one the kernel picks 0.0.0.0, and the relay's reset never arrives.
    [binaries.ip, 'route', 'add', 'default', 'dev', 'lo', 'src', '127.0.0.1'],
  ];
  for (const step of steps) {
    const result = await enter(step);
    if (result.code !== 0) throw new Error(`transparent egress: ${step.slice(1).join(' ')} failed: ${result.stderr.trim() || `exit ${String(result.code)}`}`);
  }
  // IPv6 may be disabled in the namespace; then IPv6 connects fail with ENETUNREACH, unaudited but closed.
  await enter([binaries.ip, '-6', 'route', 'add', 'default', 'dev', 'lo']);
  const dir = mkdtempSync(join(tmpdir(), 'bastion-nft-'));
  try {
    const file = join(dir, 'egress.nft');
    writeFileSync(file, transparentEgressRuleset(), { mode: 0o600 });
    const result = await enter([binaries.nft, '-f', file]);
    if (result.code !== 0) throw new Error(`transparent egress: nft failed: ${result.stderr.trim() || `exit ${String(result.code)}`}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface EgressNamespace {
  /** Where the namespace is named (/run/netns/bastion-PID-RANDOM). */
  path: string;
  /** The program and arguments that run the sandbox's launcher inside the namespace. */
  prefix: string[];
  /** Drops the namespace's name (it ends with its last process anyway). Idempotent. */
  dispose(): Promise<void>;
}

/** Removes namespaces left by a Bastion that died before removing them (its pid is in the name). */
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
 * A new named network namespace with transparent egress fully set up, for one sandbox to start
 * in. Throws (the server is refused) when it cannot be made; nothing is left behind then.
 */
export async function prepareEgressNamespace(binaries: { nsenter: string; nft: string; ip: string }): Promise<EgressNamespace> {
  await sweepStaleNamespaces(binaries.ip);
  const name = `bastion-${process.pid}-${randomBytes(4).toString('hex')}`;
  const added = await runFile(binaries.ip, ['netns', 'add', name]);
  if (added.code !== 0) throw new Error(`transparent egress: ip netns add failed: ${added.stderr.trim() || `exit ${String(added.code)}`}`);
  const path = join(NETNS_DIR, name);
  let removed: Promise<void> | undefined;
  const dispose = (): Promise<void> =>
    (removed ??= runFile(binaries.ip, ['netns', 'delete', name]).then(() => undefined));
  try {
    await setUpTransparentEgress(path, binaries);
  } catch (error) {
    await dispose();
    throw error;
  }
  return { path, prefix: [binaries.nsenter, `--net=${path}`, '--'], dispose };
}

export interface OriginalDestination {
  host: string;
  port: number;
}

/** `0000:...:0001` (conntrack's IPv6 spelling) to the short form; IPv4 unchanged. */
function compactAddress(address: string): string {
  return address.includes(':') ? new URL(`http://[${address}]/`).hostname.slice(1, -1) : address;
}

/**
 * Pure: in a /proc/PID/net/nf_conntrack text, the original destination of the TCP connection the
 * relay accepted on its catch-all port from `clientPort`. The reply direction names the relay
 * (`sport=3129`) and the client's port; the original direction the address the server dialled.
 */
export function findOriginalDestination(conntrack: string, clientPort: number): OriginalDestination | undefined {
  for (const line of conntrack.split('\n')) {
    if (!/\stcp\s/.test(line)) continue;
    const fields = [...line.matchAll(/\b(src|dst|sport|dport)=(\S+)/g)].map((m) => [m[1], m[2]] as const);
    if (fields.length < 8) continue;
    const [origin, reply] = [Object.fromEntries(fields.slice(0, 4)), Object.fromEntries(fields.slice(4, 8))];
    if (Number(origin['sport']) !== clientPort || Number(reply['dport']) !== clientPort || Number(reply['sport']) !== RELAY_TRANSPARENT_PORT) continue;
    if (Number(origin['dport']) === RELAY_TRANSPARENT_PORT) continue;
    return { host: compactAddress(String(origin['dst'])), port: Number(origin['dport']) };
  }
  return undefined;
}

/** Reads the sandbox namespace's conntrack table through /proc (Bastion is root here). */
export function originalDestination(pid: number, clientPort: number): OriginalDestination | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/net/nf_conntrack`, 'utf8');
  } catch {
    return undefined;
  }
  return findOriginalDestination(text, clientPort);
}
