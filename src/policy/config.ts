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
  /** Longest tool or prompt name (`server.tool`, UTF-8 bytes) a client may send; longer ones are refused before any lookup. */
  maxNameBytes: number;
  /** Longest resource URI (UTF-8 bytes) a client may send. */
  maxUriBytes: number;
}

export const policyConfigDefaults: PolicyConfig = { files: [], manifests: [], watch: true, followSymlinks: true, maxNameBytes: 256, maxUriBytes: 4096 };

export const policyConfigSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    files: { type: 'array', items: { type: 'string', minLength: 1 }, default: [], description: 'a list of policy files, e.g. files: [policy/agents.yaml]' },
    manifests: { type: 'array', items: { type: 'string', minLength: 1 }, default: [], description: 'a list of server manifest files whose tool scopes the policy checks' },
    watch: { type: 'boolean', default: true, description: 'true to reload when a policy file changes' },
    followSymlinks: { type: 'boolean', default: true, description: 'true (resolve symlinks in path arguments; do not turn off)' },
    maxNameBytes: { type: 'integer', minimum: 16, maximum: 65536, default: 256, description: 'bytes, e.g. 256: the longest tool or prompt name a client may send' },
    maxUriBytes: { type: 'integer', minimum: 64, maximum: 1048576, default: 4096, description: 'bytes, e.g. 4096: the longest resource URI a client may send' },
  },
} as const;
