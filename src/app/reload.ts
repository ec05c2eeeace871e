// Reloading the whole config (issue 22 item 6): SIGHUP, or a change of the config file, re-reads
// and validates it as `config check` and `serve` do. An invalid config is refused and the running
// one stays, with its problems logged and audited. A valid one is applied where it can be live
// (servers, auth.apiTokens, limits, quotas rules, curation, reload); every other changed section
// keeps its running value and is named restart_required.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { AuditEvent, type AuditWriter } from '../audit/index.js';
import { ConfigError, diffConfig, diffServers, formatProblem, loadConfigFile, type BastionConfig, type ConfigDiff, type ConfigProblem, type LoadedConfig, type ServerChanges } from '../config/index.js';
import { UpstreamCredentials } from '../credentials/index.js';
import { reportCuration } from '../curation/index.js';
import type { Gateway } from '../gateway/index.js';
import type { Limits } from '../limits/index.js';
import type { Logger } from '../observability/index.js';
import { formatProblem as formatPolicyProblem, type PolicyStore } from '../policy/index.js';
import type { RecordEvent } from './events.js';
import { admitNamed, type ServerAdmissions } from './integrity.js';
import { policyInputs } from './policy-inputs.js';

export type ReloadOutcome =
  | { status: 'refused'; problems: string[] }
  | { status: 'unchanged' }
  | { status: 'applied'; diff: ConfigDiff; gateway: ServerChanges; refused: string[]; cancelledCalls: Record<string, number> };

export interface ReloaderParts {
  /** The running config; its live parts are changed in place when a reload is applied. */
  loaded: LoadedConfig;
  gateway: Gateway;
  audit: AuditWriter;
  logger: Logger;
  record: RecordEvent;
  admissions: ServerAdmissions;
  policy: PolicyStore | undefined;
  limits: Limits | undefined;
  /** The same changes `serve` made to the config at start (e.g. --port), made to each new one before comparing. */
  adjust?: (config: BastionConfig) => void;
}

/** SIGHUP and the file watch lead here; reloads run one at a time, in order. */
export class ConfigReloader {
  private queue: Promise<unknown> = Promise.resolve();
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly onSighup = (): void => void this.reload('SIGHUP');
  private sighup = false;
  private readonly file: string;

  constructor(private readonly parts: ReloaderParts) {
    this.file = resolve(parts.loaded.source);
  }

  /** Re-reads the config file and applies it, or refuses it; resolves when drained servers have stopped. */
  reload(why: string): Promise<ReloadOutcome> {
    const next = this.queue.then(() => this.reloadNow(why));
    this.queue = next.catch(() => undefined);
    return next;
  }

  handleSighup(): void {
    if (this.sighup) return;
    process.on('SIGHUP', this.onSighup);
    this.sighup = true;
  }

  /**
   * Reloads when the config file changes, `reload.debounceMs` after the last change. The
   * directory is watched, not the file: editors replace files by rename.
   */
  watch(): void {
    if (this.watcher !== undefined) return;
    const name = basename(this.file);
    try {
      this.watcher = watch(dirname(this.file), { persistent: false }, (_event, changed) => {
        // A Kubernetes ConfigMap volume swaps its `..data` symlink; the file's own name sees no event then.
        if (changed === null || changed.toString() === name || changed.toString() === '..data') this.schedule();
      });
      this.watcher.on('error', (error) => this.parts.logger.error({ err: error, file: this.file }, 'config file watch failed; reload with SIGHUP'));
    } catch (error) {
      this.parts.logger.error({ err: error, file: this.file }, 'cannot watch the config file; reload with SIGHUP');
    }
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.sighup) process.off('SIGHUP', this.onSighup);
    this.sighup = false;
  }

  private schedule(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reload('file changed');
    }, this.parts.loaded.config.reload.debounceMs);
    this.timer.unref();
  }

  private async reloadNow(why: string): Promise<ReloadOutcome> {
    const { logger } = this.parts;
    try {
      const next = this.read();
      if ('problems' in next) return await this.refuse(why, next.problems);
      const diff = diffConfig(this.parts.loaded.config, next.config);
      if (diff.empty) {
        logger.info({ why, file: this.file }, 'config reloaded: nothing changed');
        await this.parts.audit.event(AuditEvent.ConfigReload, { why, status: 'unchanged', source: this.file });
        return { status: 'unchanged' };
      }
      const problems = this.liveProblems(next, diff);
      if (problems.length > 0) return await this.refuse(why, problems);
      return await this.apply(why, next, diff);
    } catch (error) {
      // A reload never ends the process: whatever went wrong, the running config stays.
      logger.error({ err: error, why }, 'config reload failed; the running config stays');
      return await this.refuse(why, [`internal error: ${error instanceof Error ? error.message : String(error)}`]);
    }
  }

  /** Reads and validates the file as `config check` does, with serve's start-time changes. */
  private read(): LoadedConfig | { problems: string[] } {
    let next: LoadedConfig;
    try {
      next = loadConfigFile(this.file);
    } catch (error) {
      if (error instanceof ConfigError) return { problems: error.problems.map(formatProblem) };
      throw error;
    }
    this.parts.adjust?.(next.config);
    return next;
  }

  /** What the running gateway cannot take live even though the file is valid. */
  private liveProblems(next: LoadedConfig, diff: ConfigDiff): string[] {
    const { loaded, gateway } = this.parts;
    const problems: ConfigProblem[] = [];
    const at = (field: string, message: string, fix: string): void => void problems.push({ file: this.file, line: undefined, column: undefined, field, message, fix });
    if (diff.live.includes('auth.apiTokens') && gateway.http !== undefined && next.config.auth.apiTokens.length === 0 && loaded.config.auth.oauth === undefined) {
      at('auth.apiTokens', 'the new config leaves the HTTP listener with no credential at all', 'keep at least one API token (bastion token new), or configure auth.oauth and restart');
    }
    if (UpstreamCredentials.needed(next.config) && !UpstreamCredentials.needed(loaded.config)) {
      at('servers', 'a server with auth (per-agent upstream credentials) needs the credential vault, which is opened at start', 'restart the gateway to add the first server with auth');
    }
    return problems.map(formatProblem);
  }

  private async refuse(why: string, problems: string[]): Promise<ReloadOutcome> {
    this.parts.logger.error({ why, file: this.file, problems }, 'config reload refused; the running config stays in force');
    await this.parts.audit.event(AuditEvent.ConfigReload, { why, status: 'refused', source: this.file, problems }).catch(() => undefined);
    return { status: 'refused', problems };
  }

  private async apply(why: string, next: LoadedConfig, diff: ConfigDiff): Promise<ReloadOutcome> {
    const { loaded, gateway, audit, logger, admissions, policy, limits } = this.parts;
    const running = loaded.config;
    const touched = diff.servers.added.length + diff.servers.removed.length + diff.servers.changed.length + diff.servers.curated.length > 0;
    // The policy is compiled from the servers' manifests and inline scopes (the policy section itself waits for a restart).
    if (policy !== undefined && touched) {
      const compiled = policy.replaceInputs(policyInputs({ ...next, config: { ...next.config, policy: running.policy } }));
      if (!compiled.ok) return this.refuse(why, compiled.problems.map(formatPolicyProblem));
    }
    // Admitted as at boot (signature, lock, artifact, feed, certification) before any of them is offered.
    await admitNamed([...diff.servers.added, ...diff.servers.changed], { ...next, config: { ...next.config, scan: running.scan } }, admissions, audit, logger);
    for (const name of diff.servers.removed) {
      admissions.admitted.delete(name);
      admissions.refused.delete(name);
    }
    // From here to the gateway's swap nothing waits, so no call sees half of the new table.
    const table = running.servers;
    for (const name of diff.servers.removed) delete table[name];
    for (const name of [...diff.servers.added, ...diff.servers.changed, ...diff.servers.curated]) table[name] = next.config.servers[name] as BastionConfig['servers'][string];
    const offered = Object.fromEntries(Object.entries(table).filter(([name]) => !admissions.refused.has(name)));
    const changes = diffServers(gateway.runtime.config.servers, offered);
    const curatedNow = [...changes.added, ...changes.changed, ...changes.curated];
    reportCuration(Object.fromEntries(curatedNow.map((name) => [name, table[name] ?? {}])), (server) => admissions.admitted.get(server)?.lockEntry, this.parts.record, logger);
    const apiTokens = diff.live.includes('auth.apiTokens') ? next.config.auth.apiTokens : undefined;
    const newLimits = diff.live.includes('limits') ? next.config.limits : undefined;
    if (diff.live.includes('reload')) running.reload = next.config.reload;
    if (limits !== undefined && diff.live.some((section) => section.startsWith('quotas.'))) {
      const quotas = { ...next.config.quotas, enabled: running.quotas.enabled, store: running.quotas.store };
      limits.reconfigure(quotas);
      Object.assign(running.quotas, quotas);
    }
    const refused = [...diff.servers.added, ...diff.servers.changed].filter((name) => admissions.refused.has(name));
    const summary = {
      why,
      status: 'applied',
      source: this.file,
      servers_added: changes.added,
      servers_removed: changes.removed,
      servers_changed: changes.changed,
      servers_curated: changes.curated,
      servers_refused: refused,
      live: diff.live,
      restart_required: diff.restartRequired,
    };
    const swapped = gateway.reconfigure({ servers: offered, changes, drainMs: running.reload.drainSeconds * 1000, ...(apiTokens === undefined ? {} : { apiTokens }), ...(newLimits === undefined ? {} : { limits: newLimits }) });
    await audit.event(AuditEvent.ConfigReload, summary);
    logger.info(summary, diff.restartRequired.length === 0 ? 'config reloaded' : `config reloaded; changes to ${diff.restartRequired.join(', ')} keep their running values until a restart`);
    const result = await swapped;
    return { status: 'applied', diff, gateway: changes, refused, cancelledCalls: result.cancelledCalls };
  }
}
