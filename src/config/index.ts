export { loadConfigFile, loadConfigText } from './load.js';
export { embeddedDefaultConfig, materializeDemo, demoPolicyText } from './defaults.js';
export { ConfigError, formatProblem } from './errors.js';
export type { ConfigProblem } from './errors.js';
export { resolveValue, resolveMap, SecretError } from './secrets.js';
export { configSchema } from './schema.js';
export type * from './types.js';
export { diffConfig, diffServers, LIVE_SECTIONS } from './diff.js';
export type { ConfigDiff, ServerChanges } from './diff.js';
