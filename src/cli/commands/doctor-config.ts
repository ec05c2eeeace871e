import { ConfigError, loadConfigFile, type BastionConfig } from '../../config/index.js';
import { CliError } from '../errors.js';

/** A line of `bastion doctor --config`: about the config, not the host. */
export interface ConfigHint {
  control: string;
  detail: string;
}

/**
 * What in a config will surprise its operator at run time although it is valid: today, servers
 * that declare no tools (with the policy enforced, every tool they offer is hidden from agents).
 */
export function configHints(file: string): ConfigHint[] {
  let config: BastionConfig;
  try {
    config = loadConfigFile(file).config;
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message, 2);
    throw error;
  }
  if (!config.policy.enforce) return [];
  const sharedManifests = config.policy.manifests.length > 0;
  const hints: ConfigHint[] = [];
  for (const [name, server] of Object.entries(config.servers)) {
    if (Object.keys(server.tools ?? {}).length > 0 || server.manifest !== undefined) continue;
    const maybe = sharedManifests ? ' unless one of policy.manifests declares them' : '';
    hints.push({
      control: `server:${name}`,
      detail: `declares no tools, so every tool it offers is hidden from agents${maybe}; declare them in servers.${name}.tools or draft a manifest: npx bastion manifest from-server --config ${file} --server ${name}`,
    });
  }
  return hints;
}
