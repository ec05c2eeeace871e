import { resolve } from 'node:path';
import type { LoadedConfig } from '../config/index.js';
import { declarationsFromConfig, type PolicyStoreOptions } from '../policy/index.js';

/**
 * What the policy is compiled from for a config: its policy files, every manifest (listed under
 * policy.manifests or a server's manifest), and the scopes declared inline in servers. `serve`
 * and `policy explain --config` both take it from here, so they cannot disagree.
 */
export function policyInputs(loaded: LoadedConfig): Pick<PolicyStoreOptions, 'policyFiles' | 'manifestFiles' | 'declarations' | 'followSymlinks'> {
  const { config } = loaded;
  return {
    policyFiles: config.policy.files.map((file) => resolve(loaded.baseDir, file)),
    manifestFiles: [
      ...config.policy.manifests.map((file) => resolve(loaded.baseDir, file)),
      ...Object.values(config.servers).flatMap((server) => (server.manifest === undefined ? [] : [resolve(loaded.baseDir, server.manifest)])),
    ],
    declarations: declarationsFromConfig(config.servers),
    followSymlinks: config.policy.followSymlinks,
  };
}
