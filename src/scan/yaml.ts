import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';

/**
 * YAML for the scanner's inputs (a manifest, a suppression file), loaded on first use: loading the yaml
 * package was about 35 ms of `bastion scan`'s start-up, and a JSON manifest never needs it. require()
 * gives the module the ES import gave (its "node" export is this CommonJS build).
 */
let yaml: typeof Yaml | undefined;

export function parseYaml(text: string): unknown {
  yaml ??= createRequire(import.meta.url)('yaml') as typeof Yaml;
  return yaml.parse(text) as unknown;
}
