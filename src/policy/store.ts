// Holds the current compiled policy and swaps it atomically on reload. A reload that fails
// (a policy or manifest that does not parse or validate) keeps the previous policy and logs
// every problem, so a typo during an edit never opens or closes the gateway by accident.
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from '../observability/index.js';
import { loadManifestFile, mergeDeclarations, type ServerDeclarations, type ToolDeclarations } from './declarations.js';
import { PolicyError, formatProblem, type PolicyProblem } from './errors.js';
import { PolicyEvaluator, type Decision, type EvaluatorOptions, type ServerRequestKind } from './evaluator.js';
import { loadPolicyFiles } from './policy-file.js';

export interface PolicyStoreOptions extends EvaluatorOptions {
  /** Policy files (YAML or JSON), merged into one policy set. */
  policyFiles: readonly string[];
  /** Server manifests whose tool scopes are read (the policy-relevant subset). */
  manifestFiles?: readonly string[];
  /** Declarations from elsewhere (inline gateway config, verified manifests); they win over manifest files. */
  declarations?: ToolDeclarations;
  logger: Logger;
  /** Debounce for file-change reloads, in milliseconds (default 200). */
  debounceMs?: number;
  /** Told about every reload attempt, accepted or rejected (the audit log records policy changes). */
  onReload?: (why: string, result: ReloadResult) => void;
}

export type ReloadResult = { ok: true; evaluator: PolicyEvaluator; warnings: PolicyProblem[] } | { ok: false; problems: PolicyProblem[] };

/** Loads and compiles everything; never throws for bad input, returns the problems instead. */
export function compilePolicy(options: Pick<PolicyStoreOptions, 'policyFiles' | 'manifestFiles' | 'declarations' | 'followSymlinks'>): ReloadResult {
  const problems: PolicyProblem[] = [];
  const warnings: PolicyProblem[] = [];
  if (options.policyFiles.length === 0) {
    problems.push({ file: '(config)', line: undefined, column: undefined, field: 'policy.files', message: 'no policy files are configured, so every call would be denied', fix: 'list at least one policy file under policy.files' });
  }
  const loaded = loadPolicyFiles(options.policyFiles);
  warnings.push(...loaded.warnings);
  if (!loaded.ok) problems.push(...loaded.problems);
  const fromManifests: Record<string, ServerDeclarations> = {};
  for (const file of options.manifestFiles ?? []) {
    const manifest = loadManifestFile(file);
    if (!manifest.ok) {
      problems.push(...manifest.problems);
      continue;
    }
    warnings.push(...manifest.warnings);
    if (Object.hasOwn(fromManifests, manifest.server)) {
      problems.push({ file, line: undefined, column: undefined, field: 'name', message: `server '${manifest.server}' is described by two manifests`, fix: 'keep one manifest per server' });
      continue;
    }
    fromManifests[manifest.server] = manifest.declarations;
  }
  if (problems.length > 0 || !loaded.ok) return { ok: false, problems };
  const declarations = mergeDeclarations(fromManifests, options.declarations ?? {});
  const evaluatorOptions = options.followSymlinks === undefined ? {} : { followSymlinks: options.followSymlinks };
  return { ok: true, evaluator: new PolicyEvaluator(loaded.policy, declarations, evaluatorOptions), warnings };
}

export class PolicyStore {
  private evaluator: PolicyEvaluator;
  private declarations: ToolDeclarations | undefined;
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly onSighup = (): void => {
    this.reload('SIGHUP');
  };
  private sighupInstalled = false;
  private readonly reloadListeners: Array<() => void> = [];

  private constructor(
    private options: PolicyStoreOptions,
    initial: PolicyEvaluator,
  ) {
    this.evaluator = initial;
    this.declarations = options.declarations;
  }

  /** Loads the policy at boot. Throws PolicyError when it cannot be used: the gateway must not start without one. */
  static open(options: PolicyStoreOptions): PolicyStore {
    const result = compilePolicy(options);
    if (!result.ok) throw new PolicyError(result.problems);
    for (const warning of result.warnings) options.logger.warn({ problem: formatProblem(warning) }, 'policy warning');
    options.logger.info({ agents: result.evaluator.agentIds().length, files: options.policyFiles }, 'policy loaded');
    return new PolicyStore(options, result.evaluator);
  }

  /** The policy every decision uses right now. Read it once per request. */
  get current(): PolicyEvaluator {
    return this.evaluator;
  }

  /** tools/list for one server, reduced to what the agent may call (denied tools do not leak). */
  filterTools<T extends { name?: unknown }>(agentId: string | undefined, server: string, items: readonly T[]): T[] {
    const policy = this.evaluator;
    return items.filter((item) => typeof item.name === 'string' && policy.toolVisible(agentId, server, item.name));
  }

  /** The names of `tools` that no manifest or config declares (so no agent sees them). */
  undeclaredTools(server: string, tools: readonly string[]): string[] {
    const policy = this.evaluator;
    return tools.filter((tool) => !policy.toolDeclared(server, tool));
  }

  filterPrompts<T extends { name?: unknown }>(agentId: string | undefined, server: string, items: readonly T[]): T[] {
    const policy = this.evaluator;
    return items.filter((item) => typeof item.name === 'string' && policy.promptVisible(agentId, server, item.name));
  }

  filterResources<T extends { uri?: unknown }>(agentId: string | undefined, server: string, items: readonly T[]): T[] {
    const policy = this.evaluator;
    return items.filter((item) => typeof item.uri === 'string' && policy.resourceVisible(agentId, server, item.uri));
  }

  filterResourceTemplates<T extends { uriTemplate?: unknown }>(agentId: string | undefined, _server: string, items: readonly T[]): T[] {
    const policy = this.evaluator;
    return items.filter((item) => typeof item.uriTemplate === 'string' && policy.resourceTemplateVisible(agentId, item.uriTemplate));
  }

  /** May `server` send a sampling / elicitation / roots request to this agent's client? */
  mayServerRequest(agentId: string | undefined, server: string, kind: ServerRequestKind): Decision {
    return this.evaluator.decideServerRequest(agentId, server, kind);
  }

  /** Replaces the extra declarations (e.g. after the integrity module verified new manifests) and recompiles. */
  setDeclarations(declarations: ToolDeclarations): ReloadResult {
    const previous = this.declarations;
    this.declarations = declarations;
    const result = this.reload('declarations changed');
    if (!result.ok) this.declarations = previous;
    return result;
  }

  /**
   * A config reload changed what the policy is compiled from (servers' manifests and inline
   * scopes): compiles with the new inputs and swaps only if they are valid; otherwise the old
   * inputs and policy stay and the problems are returned (the reload is then refused).
   */
  replaceInputs(inputs: Pick<PolicyStoreOptions, 'policyFiles' | 'manifestFiles' | 'declarations' | 'followSymlinks'>): ReloadResult {
    const previous = this.options;
    const previousDeclarations = this.declarations;
    this.options = { ...this.options, ...inputs };
    this.declarations = inputs.declarations;
    const result = this.reload('config reload');
    if (!result.ok) {
      this.options = previous;
      this.declarations = previousDeclarations;
    } else if (this.watchers.length > 0) {
      // A manifest the new config names is watched from now on, one it dropped no longer.
      for (const watcher of this.watchers) watcher.close();
      this.watchers = [];
      this.watch();
    }
    return result;
  }

  /** Recompiles from the files; swaps only if everything is valid. */
  reload(why = 'reload requested'): ReloadResult {
    const result = compilePolicy({ ...this.options, ...(this.declarations === undefined ? {} : { declarations: this.declarations }) });
    this.options.onReload?.(why, result);
    if (!result.ok) {
      this.options.logger.error({ why, problems: result.problems.map(formatProblem) }, 'policy reload rejected; the previous policy stays in force');
      return result;
    }
    this.evaluator = result.evaluator;
    for (const listener of this.reloadListeners) {
      try {
        listener();
      } catch (error) {
        this.options.logger.error({ err: error }, 'a policy reload listener failed');
      }
    }
    for (const warning of result.warnings) this.options.logger.warn({ problem: formatProblem(warning) }, 'policy warning');
    this.options.logger.info({ why, agents: result.evaluator.agentIds().length }, 'policy reloaded');
    return result;
  }

  /**
   * Reloads when a policy or manifest file changes. Directories are watched, not files, because
   * editors replace files by rename and a watch on the old inode would go quiet.
   */
  watch(): void {
    if (this.watchers.length > 0) return;
    const files = [...this.options.policyFiles, ...(this.options.manifestFiles ?? [])].map((file) => resolve(file));
    const byDirectory = new Map<string, Set<string>>();
    for (const file of files) {
      const names = byDirectory.get(dirname(file)) ?? new Set<string>();
      names.add(basename(file));
      byDirectory.set(dirname(file), names);
    }
    for (const [directory, names] of byDirectory) {
      try {
        const watcher = watch(directory, { persistent: false }, (_event, name) => {
          if (name === null || names.has(name.toString())) this.schedule(`file changed: ${name === null ? directory : name.toString()}`);
        });
        watcher.on('error', (error) => this.options.logger.error({ directory, err: error }, 'policy file watch failed; reload with SIGHUP'));
        this.watchers.push(watcher);
      } catch (error) {
        this.options.logger.error({ directory, err: error }, 'cannot watch policy directory; reload with SIGHUP');
      }
    }
  }

  /** Calls `listener` after each accepted reload (the new policy is current by then). */
  onReloaded(listener: () => void): void {
    this.reloadListeners.push(listener);
  }

  /** Reloads on SIGHUP. */
  handleSighup(): void {
    if (this.sighupInstalled) return;
    process.on('SIGHUP', this.onSighup);
    this.sighupInstalled = true;
  }

  close(): void {
    for (const watcher of this.watchers) watcher.close();
    this.watchers = [];
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.sighupInstalled) process.off('SIGHUP', this.onSighup);
    this.sighupInstalled = false;
  }

  private schedule(why: string): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.reload(why);
    }, this.options.debounceMs ?? 200);
    this.timer.unref();
  }
}
