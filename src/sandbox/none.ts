// The `none` backend: no confinement at all. Only chosen by explicit config; every start emits
// a warning the gateway must log (and audit), so an unconfined server is never silent.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { nameExit } from './exit.js';
import type { SandboxBackend, SandboxEvents, SandboxHandle } from './types.js';

export function createNoneBackend(): SandboxBackend {
  return {
    name: 'none',
    async spawn(spec) {
      const events = new EventEmitter<SandboxEvents>();
      const child: ChildProcessWithoutNullStreams = spawn(spec.command, spec.args, {
        env: { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8', ...spec.env },
        cwd: spec.cwd,
        stdio: ['pipe', 'pipe', 'pipe'],
        shell: false,
        windowsHide: true,
      });
      await new Promise<void>((resolve, reject) => {
        child.once('error', (error) => reject(new Error(`sandbox: cannot start ${spec.command} for ${spec.serverName}: ${error.message}`)));
        child.once('spawn', () => resolve());
      });
      const warnings = [`server ${spec.serverName} runs WITHOUT a sandbox (sandbox.backend: none): no namespaces, seccomp, uid separation or resource limits`];
      for (const warning of warnings) setImmediate(() => events.emit('warning', warning));
      let disposed: Promise<void> | undefined;
      const handle: SandboxHandle = {
        child,
        backend: 'none',
        uid: undefined,
        events,
        warnings,
        cpuTimeMs: () => undefined,
        memoryBytes: () => undefined,
        kill: (signal = 'SIGKILL') => {
          child.kill(signal);
        },
        // A plain child: Node already reports the signal itself; no cgroup to tell an OOM kill.
        describeExit: (code, signal) => (signal !== null ? nameExit(code, signal, false) : undefined),
        dispose: () => {
          disposed ??= (async () => {
            if (child.exitCode === null && child.signalCode === null) {
              const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
              child.kill('SIGKILL');
              await gone;
            }
          })();
          return disposed;
        },
      };
      return handle;
    },
  };
}
