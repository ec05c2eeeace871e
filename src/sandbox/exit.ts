// How a sandboxed server ended, by name. Between the gateway and the server sits bwrap (or runc,
// runsc, the egress relay), which reports a child killed by signal N as exit code 128+N; and a
// SIGKILL from the kernel's OOM killer looks like any other SIGKILL unless the cgroup says so.
import { constants } from 'node:os';

export interface NamedExit {
  signal: string;
  detail: string;
}

const SIGNAL_NAMES = new Map<number, string>(Object.entries(constants.signals).map(([name, number]) => [number, name]));

/**
 * `code` 128+N (or a direct `signal`) names signal N; a SIGKILL while the cgroup counted a new OOM
 * kill is reported as out of memory. undefined: an ordinary exit (code 0-128, or unknown N).
 * A server that itself calls exit(139) is indistinguishable from a SIGSEGV here: bwrap and the
 * OCI runtimes report both the same way.
 */
export function nameExit(code: number | null, signal: string | null, oomKilled: boolean, memoryBytes?: number, options: { oomEndsWithAnyCode?: boolean } = {}): NamedExit | undefined {
  const name = signal ?? (code !== null && code > 128 ? SIGNAL_NAMES.get(code - 128) : undefined);
  const limit = memoryBytes !== undefined ? ` of ${Math.round(memoryBytes / (1024 * 1024))} MiB` : '';
  if (oomKilled && options.oomEndsWithAnyCode && name !== 'SIGKILL' && code !== 0) {
    // gVisor: the OOM killer's victim may be the sentry or gofer rather than the server, and runsc
    // then reports the container's end with an ordinary code (2 was seen). The kill is the cause.
    return { signal: 'SIGKILL', detail: `killed by SIGKILL: out of memory (the memory limit${limit} was reached and the cgroup's OOM killer ended a process of the sandbox; the runtime reported ${name ?? `exit code ${String(code)}`})` };
  }
  if (name === undefined) return undefined;
  if (name === 'SIGKILL' && oomKilled) {
    return { signal: name, detail: `killed by SIGKILL: out of memory (the memory limit${limit} was reached and the cgroup's OOM killer ended it)` };
  }
  return { signal: name, detail: `killed by ${name}` };
}
