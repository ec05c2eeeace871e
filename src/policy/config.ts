// The `policy:` section of bastion.yaml, for the lead to merge into the config schema.

export interface PolicyConfig {
  /** Policy files (YAML or JSON), relative to the config file's directory. */
  files: string[];
  /** Server manifests read for tool scopes, when not taken from `servers.NAME.manifest`. */
  manifests: string[];
  /** Reload when a policy or manifest file changes (SIGHUP always reloads). */
  watch: boolean;
  /** Resolve symlinks in path arguments before checking them. Leave on. */
  followSymlinks: boolean;
}

export const policyConfigDefaults: PolicyConfig = { files: [], manifests: [], watch: true, followSymlinks: true };

export const policyConfigSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    files: { type: 'array', items: { type: 'string', minLength: 1 }, default: [], description: 'a list of policy files, e.g. files: [policy/agents.yaml]' },
    manifests: { type: 'array', items: { type: 'string', minLength: 1 }, default: [], description: 'a list of server manifest files whose tool scopes the policy checks' },
    watch: { type: 'boolean', default: true, description: 'true to reload when a policy file changes' },
    followSymlinks: { type: 'boolean', default: true, description: 'true (resolve symlinks in path arguments; do not turn off)' },
  },
} as const;
