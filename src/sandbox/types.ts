import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import type { SandboxBackendName, SandboxLimits } from './config.js';
import type { NamedExit } from './exit.js';

/** What to run and what it was granted. Scopes are the manifest's declared scopes. */
export interface SandboxSpec {
  serverName: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  /** Working directory inside the sandbox (default /tmp). Must be visible there. */
  cwd?: string;
  /** The server's own package (and its node_modules), bound read-only at the same path. */
  packageDirs: string[];
  scopes: string[];
  /**
   * Declared directories the agent of this process may not use (src/sandbox/scopes.ts,
   * narrowScopes): they exist in the sandbox as empty read-only directories, nothing of the host's.
   */
  hiddenPaths?: string[];
  limits?: Partial<SandboxLimits>;
  /**
   * How many copies of this server may run at once (one per client session). They share one uid,
   * and RLIMIT_NPROC counts every process of a uid together, so the rlimit backstop is scaled by
   * it; the per-copy pids limit is the cgroup's. Default 1.
   */
  instances?: number;
}

export interface EgressEvent {
  server: string;
  allowed: boolean;
  host: string;
  port: number;
  /** Why it was refused, or `connected` / `connect failed: ...` once allowed. */
  reason: string;
  /** How the server asked: CONNECT through the proxy/socket, a plain connect() (transparent), or a DNS query. */
  via?: EgressVia;
  /** Refused only: the scope that would have allowed it. */
  scope?: string;
  /** Refused only: how many refusals of this destination were not reported since the last report (rate limit). */
  suppressed?: number;
}

export type EgressVia = 'proxy' | 'transparent' | 'dns';

export interface LimitEvent {
  server: string;
  kind: 'memory' | 'pids' | 'cpu-time';
  detail: string;
}

export interface SandboxEvents {
  egress: [EgressEvent];
  limit: [LimitEvent];
  warning: [string];
}

export interface SandboxHandle {
  /** stdin/stdout carry MCP; stderr is the server's log. */
  readonly child: ChildProcessWithoutNullStreams;
  readonly backend: SandboxBackendName;
  /** Host uid the server runs as (undefined: same as Bastion). */
  readonly uid: number | undefined;
  readonly events: EventEmitter<SandboxEvents>;
  /** Degradations and warnings from start-up (also emitted as `warning`, possibly before a listener exists). */
  readonly warnings: readonly string[];
  /** CPU time of the whole process tree so far, in ms; undefined without cgroups. */
  cpuTimeMs(): number | undefined;
  /** Memory charged to the tree, in bytes; undefined without cgroups. */
  memoryBytes(): number | undefined;
  kill(signal?: NodeJS.Signals): void;
  /** The signal behind an exit code 128+N, and an OOM kill from the cgroup's counter; undefined for an ordinary exit. */
  describeExit(code: number | null, signal: string | null): NamedExit | undefined;
  /** Kills what is left, removes the cgroup, the broker socket and temporary files. Idempotent. */
  dispose(): Promise<void>;
}

export interface SandboxBackend {
  readonly name: SandboxBackendName;
  spawn(spec: SandboxSpec): Promise<SandboxHandle>;
}
