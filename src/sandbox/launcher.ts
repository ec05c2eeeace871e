// Adapter from the gateway's ProcessLauncher to a sandbox backend: the gateway keeps spawning
// through one interface; the scopes and package dirs of each server come from the resolver.
import type { LaunchSpec } from '../gateway/upstream/channel.js';
import type { ProcessLauncher } from '../gateway/upstream/launcher.js';
import type { SandboxBackend, SandboxHandle, SandboxSpec } from './types.js';

export interface ServerSandboxProfile {
  scopes: string[];
  packageDirs: string[];
  limits?: SandboxSpec['limits'];
}

/** `onStart` receives each handle (to wire events to the audit log and read CPU time). */
export function sandboxLauncher(
  backend: SandboxBackend,
  profileOf: (server: string) => ServerSandboxProfile,
  onStart: (server: string, handle: SandboxHandle) => void = () => {},
): ProcessLauncher {
  return {
    name: backend.name,
    async launch(spec: LaunchSpec) {
      const profile = profileOf(spec.server);
      const sandboxSpec: SandboxSpec = {
        serverName: spec.server,
        command: spec.command,
        args: spec.args,
        env: spec.env,
        packageDirs: profile.packageDirs,
        scopes: profile.scopes,
        ...(spec.cwd !== undefined ? { cwd: spec.cwd } : {}),
        ...(profile.limits !== undefined ? { limits: profile.limits } : {}),
      };
      const handle = await backend.spawn(sandboxSpec);
      onStart(spec.server, handle);
      return { child: handle.child, dispose: () => handle.dispose(), describeExit: (code, signal) => handle.describeExit(code, signal) };
    },
  };
}
