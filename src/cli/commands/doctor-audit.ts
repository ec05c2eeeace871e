import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { probeAppendOnly } from '../../audit/append-only.js';
import type { DoctorCheck } from '../../sandbox/index.js';

/**
 * The `audit append-only` line of `bastion doctor`: whether segments written under `dir` (or its
 * nearest existing parent: the log may not exist yet) can carry chattr +a / +i (audit.appendOnly).
 */
export function appendOnlyCheck(dir: string): DoctorCheck {
  let existing = resolve(dir);
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  const support = probeAppendOnly(existing);
  return {
    control: 'audit append-only',
    status: support.supported ? 'ok' : 'degraded',
    detail: support.supported ? `${existing}: ${support.detail}` : `${existing}: ${support.detail}; audit.appendOnly: auto runs without it, required refuses to start`,
  };
}
