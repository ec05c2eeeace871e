import { readFileSync } from 'node:fs';

/** The package version, read from package.json next to the build output. */
export function packageVersion(): string {
  for (const candidate of ['../../../package.json', '../../package.json']) {
    try {
      const parsed = JSON.parse(readFileSync(new URL(candidate, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (parsed.name === 'bastion-mcp' && typeof parsed.version === 'string') return parsed.version;
    } catch {
      // try the next location: the layout differs between src (tsx) and dist
    }
  }
  return '0.0.0-unknown';
}
