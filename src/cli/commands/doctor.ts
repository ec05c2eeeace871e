import type { Command } from 'commander';
import { doctorReport } from '../../sandbox/index.js';
import { CliError } from '../errors.js';
import { appendOnlyCheck, auditSettingsOf } from './doctor-audit.js';
import { configHints } from './doctor-config.js';
import type { RegisterCommands } from './index.js';

export const registerDoctor: RegisterCommands = (program: Command) => {
  program
    .command('doctor')
    .description('report which sandbox backends and controls work on this host, and what is degraded')
    .option('--json', 'print the full report as JSON')
    .option('--audit-dir <dir>', 'where the audit log lives, for the append-only check (default: the --config file\'s audit dir, else the current directory)')
    .option('--config <file>', 'also report what in this bastion.yaml will surprise at run time (servers whose tools are all hidden)')
    .action(async (options: { json?: boolean; config?: string; auditDir?: string }) => {
      const report = await doctorReport();
      // --config gives the audit directory and mode the gateway would use; --audit-dir overrides the directory.
      const audit = options.config === undefined ? { dir: '.', mode: 'auto' as const } : auditSettingsOf(options.config);
      report.checks.push(appendOnlyCheck(options.auditDir ?? audit.dir, audit.mode));
      const hints = options.config === undefined ? [] : configHints(options.config);
      if (options.json) {
        process.stdout.write(`${JSON.stringify(options.config === undefined ? report : { ...report, configHints: hints }, null, 2)}\n`);
      } else {
        const width = Math.max(...report.checks.map((c) => c.control.length), ...hints.map((hint) => hint.control.length));
        for (const check of report.checks) process.stdout.write(`${check.status.padEnd(8)} ${check.control.padEnd(width)}  ${check.detail}\n`);
        for (const hint of hints) process.stdout.write(`${'hint'.padEnd(8)} ${hint.control.padEnd(width)}  ${hint.detail}\n`);
        process.stdout.write(`\nusable sandbox backends: ${report.usableBackends.join(', ')}\n`);
      }
      if (!report.usableBackends.includes('bwrap')) {
        throw new CliError('the default sandbox backend (bwrap) cannot start servers on this host; fix the items marked "missing" or configure sandbox.backend', 1);
      }
    });
};
