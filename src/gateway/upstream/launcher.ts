import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { LaunchSpec } from './channel.js';

/** A started server process and how to release what was created for it. */
export interface LaunchedProcess {
  child: ChildProcessWithoutNullStreams;
  /** Releases anything the launcher created (sandbox state, cgroups). Safe to call twice. */
  dispose(): Promise<void>;
  /** The signal that ended the server when a wrapper (a sandbox) reports it as exit code 128+N. */
  describeExit?(code: number | null, signal: string | null): { signal: string; detail: string } | undefined;
}

/**
 * Starts stdio servers. The sandbox module provides the confined implementation; the direct
 * launcher below is the `none` backend and is only used when the config asks for it.
 */
export interface ProcessLauncher {
  readonly name: string;
  launch(spec: LaunchSpec): Promise<LaunchedProcess>;
  /** Drops what the launcher keeps per server (a server removed or redefined by a config reload). */
  forget?(server: string): void;
}

/** The variables every server gets; nothing else of the gateway's own environment leaks through. */
export function baseEnvironment(): Record<string, string> {
  return {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
  };
}

export const directLauncher: ProcessLauncher = {
  name: 'none',
  async launch(spec) {
    const child = spawn(spec.command, spec.args, {
      env: { ...baseEnvironment(), ...spec.env },
      cwd: spec.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      shell: false,
      windowsHide: true,
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => reject(new Error(`cannot start ${spec.command}: ${error.message}`));
      child.once('error', onError);
      child.once('spawn', () => {
        child.off('error', onError);
        resolve();
      });
    });
    // After the start, an 'error' (a kill that failed, say) must not end the gateway: the
    // connection sees the process end through its own exit and stream events.
    child.on('error', () => {});
    return { child, dispose: async () => {} };
  },
};
