import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { probeAppendOnly, type AppendOnlyMode } from '../../audit/append-only.js';
import { resolveAuditConfig } from '../../audit/index.js';
import { ConfigError, loadConfigFile } from '../../config/index.js';
import type { DoctorCheck } from '../../sandbox/index.js';
import { CliError } from '../errors.js';

/**
 * The `audit append-only` line of `bastion doctor`: whether segments written under `dir` (or its
 * nearest existing parent: the log may not exist yet) can carry chattr +a / +i, and what the
 * configured audit.appendOnly (default auto) does with that.
 */
export function appendOnlyCheck(dir: string, mode: AppendOnlyMode = 'auto'): DoctorCheck {
  let existing = resolve(dir);
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  const support = probeAppendOnly(existing);
  const control = 'audit append-only';
  if (mode === 'off') return { control, status: 'degraded', detail: `${existing}: audit.appendOnly is off: ordinary files (${support.supported ? 'this host could protect them' : support.detail})` };
  if (support.supported) return { control, status: 'ok', detail: `${existing}: ${support.detail}` };
  const outcome = mode === 'required' ? 'audit.appendOnly is required: the gateway will refuse to start' : 'audit.appendOnly: auto (the default) runs with ordinary files here and logs one info line; required would refuse to start';
  return { control, status: mode === 'required' ? 'missing' : 'degraded', detail: `${existing}: ${support.detail}; ${outcome}` };
}

/** The audit directory and append-only mode a bastion.yaml gives (for `bastion doctor --config`). */
export function auditSettingsOf(file: string): { dir: string; mode: AppendOnlyMode } {
  try {
    const loaded = loadConfigFile(file);
    const audit = resolveAuditConfig(loaded.config.audit, resolve(loaded.baseDir, loaded.config.stateDir));
    return { dir: audit.dir, mode: audit.appendOnly };
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message, 2);
    throw error;
  }
}
