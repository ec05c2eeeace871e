// The compiled policy: per agent, grants indexed by action and resource (path maps walked by
// ancestor, name maps, short lists for network and URIs); per tool, declared scopes compiled
// to templates. A decision is a handful of map lookups plus, for path arguments, one realpath.
import type { ToolDeclarations } from './declarations.js';
import { canonicalizePath, resolvePhysical, type PathRejection } from './path.js';
import type { Grant, PolicySet } from './policy-file.js';
import { parseTarget, targetCovers, type Action, type ResourceKind, type Target } from './scope.js';
import { compileDeclared, expand, type DeclaredScope } from './template.js';

export type DecisionReason =
  | 'allowed'
  | 'policy_not_loaded'
  | 'unauthenticated'
  | 'unknown_target'
  | 'agent_has_no_policy'
  | 'tool_not_granted'
  | 'tool_not_declared'
  | 'declaration_invalid'
  | 'scope_not_granted'
  | 'argument_missing'
  | 'argument_not_bindable'
  | 'argument_invalid'
  | 'too_many_values'
  | 'prompt_not_granted'
  | 'resource_not_granted'
  | 'resource_invalid'
  | 'server_request_not_granted'
  | 'logging_not_granted'
  | 'path_changed'
  | PathRejection;

/** One step of a decision: a requirement and the grant that met it (or the reason it was not met). */
export interface RuleTrace {
  readonly effect: 'allow' | 'deny';
  /** What was needed, with argument values filled in, e.g. read:filesystem:/tmp/x/a.txt */
  readonly requirement: string;
  /** The declared scope it came from, when argument-bound: read:filesystem:${path} */
  readonly declared?: string;
  /** The grant that covered it. */
  readonly grant?: string;
  /** Who holds that grant: "agent alice" or "role reader". */
  readonly via?: string;
  /** file:line of the grant or declaration. */
  readonly source?: string;
}

export interface Decision {
  readonly allow: boolean;
  readonly reason: DecisionReason;
  readonly message: string;
  readonly rules: readonly RuleTrace[];
  /** For an allowed call: the canonical paths it reads or writes (as asked, and as resolved). */
  readonly touched?: readonly FilesystemTouch[];
}

/** A path an allowed call touches; `write` when a write:filesystem scope covers it. */
export interface FilesystemTouch {
  readonly path: string;
  readonly write: boolean;
}

/** A call that waits for an operator: how long at most, and the grant that asks for it. */
export interface ApprovalRequirement {
  readonly timeoutSeconds: number;
  readonly grant: string;
  /** file:line of the grant. */
  readonly source: string;
  readonly via: string;
}

export type ServerRequestKind = 'sampling' | 'elicitation' | 'roots';

export interface EvaluatorOptions {
  /** Resolve symlinks in path arguments and grants (default true). Off only for benchmarks of the pure lookup. */
  followSymlinks?: boolean;
}

interface Bucket {
  all: Grant[];
  any: Grant | undefined;
  paths: Map<string, Grant>;
  bareNames: Map<string, Grant>;
  qualifiedNames: Map<string, Grant>;
  serverWide: Map<string, Grant>;
}

type CompiledDeclaration = { ok: true; scopes: readonly DeclaredScope[]; source: string | undefined } | { ok: false; error: string; source: string | undefined };

interface CompiledAgent {
  id: string;
  buckets: Map<string, Bucket>;
}

const SERVER_REQUEST_SCOPE: Record<ServerRequestKind, { action: Action; resource: ResourceKind }> = {
  sampling: { action: 'exec', resource: 'sampling' },
  elicitation: { action: 'exec', resource: 'elicitation' },
  roots: { action: 'read', resource: 'roots' },
};

const bucketKey = (action: Action, resource: ResourceKind): string => `${action}:${resource}`;
const itemKey = (server: string, name: string): string => `${server}\u0000${name}`;

function deny(reason: DecisionReason, message: string, rules: RuleTrace[], rule?: RuleTrace): Decision {
  if (rule !== undefined) rules.push(rule);
  return { allow: false, reason, message, rules };
}

export class PolicyEvaluator {
  private readonly agents = new Map<string, CompiledAgent>();
  private readonly tools = new Map<string, CompiledDeclaration>();
  private readonly prompts = new Map<string, CompiledDeclaration>();
  private readonly followSymlinks: boolean;

  constructor(
    readonly policy: PolicySet,
    declarations: ToolDeclarations,
    options: EvaluatorOptions = {},
  ) {
    this.followSymlinks = options.followSymlinks ?? true;
    for (const agent of policy.agents.values()) this.agents.set(agent.id, this.compileAgent(agent.id));
    for (const [server, declared] of Object.entries(declarations)) {
      for (const [tool, item] of Object.entries(declared.tools)) this.tools.set(itemKey(server, tool), compileItem(item.scopes, item.source));
      for (const [prompt, item] of Object.entries(declared.prompts)) this.prompts.set(itemKey(server, prompt), compileItem(item.scopes, item.source));
    }
  }

  /** Agent ids that have a policy. */
  agentIds(): string[] {
    return [...this.agents.keys()];
  }

  /** May `agentId` call `tool` on `server` with these arguments? */
  decideTool(agentId: string | undefined, server: string, tool: string, args: Readonly<Record<string, unknown>>): Decision {
    const rules: RuleTrace[] = [];
    const agent = this.agentFor(agentId, rules);
    if (!('buckets' in agent)) return agent;
    const granted = findName(agent.buckets.get('exec:tools'), server, tool);
    const requirement = `exec:tools:${server}.${tool}`;
    if (granted === undefined) return deny('tool_not_granted', `agent '${agent.id}' is not granted ${requirement}`, rules, { effect: 'deny', requirement });
    rules.push(allowedBy(requirement, granted));
    return this.checkDeclared(agent, this.tools.get(itemKey(server, tool)), `tool ${server}.${tool}`, args, rules, true);
  }

  /**
   * Whether a call of `server.tool` by this agent waits for an operator: any exec:tools grant of
   * the agent that covers the tool and is marked `approval: required` holds it (one marked grant
   * is enough, even when another grant also covers the tool: the stricter reading). The shortest
   * deadline among them applies.
   */
  approvalFor(agentId: string | undefined, server: string, tool: string): ApprovalRequirement | undefined {
    const agent = agentId === undefined ? undefined : this.agents.get(agentId);
    const bucket = agent?.buckets.get('exec:tools');
    if (bucket === undefined) return undefined;
    let found: ApprovalRequirement | undefined;
    for (const grant of bucket.all) {
      if (grant.approval === undefined || !grantNamesTool(grant, server, tool)) continue;
      if (found === undefined || grant.approval.timeoutSeconds < found.timeoutSeconds) found = { timeoutSeconds: grant.approval.timeoutSeconds, grant: grant.scope.text, source: grant.source, via: grant.via };
    }
    return found;
  }

  /** prompts/get: exec:prompts for the prompt, plus any scopes the prompt declares. */
  decidePrompt(agentId: string | undefined, server: string, prompt: string, args: Readonly<Record<string, unknown>>): Decision {
    const rules: RuleTrace[] = [];
    const agent = this.agentFor(agentId, rules);
    if (!('buckets' in agent)) return agent;
    const requirement = `exec:prompts:${server}.${prompt}`;
    const granted = findName(agent.buckets.get('exec:prompts'), server, prompt);
    if (granted === undefined) return deny('prompt_not_granted', `agent '${agent.id}' is not granted ${requirement}`, rules, { effect: 'deny', requirement });
    rules.push(allowedBy(requirement, granted));
    return this.checkDeclared(agent, this.prompts.get(itemKey(server, prompt)), `prompt ${server}.${prompt}`, args, rules, false);
  }

  /** resources/read: read:resources covering the URI (file: URIs canonicalized like paths). */
  decideResource(agentId: string | undefined, server: string, uri: string): Decision {
    const rules: RuleTrace[] = [];
    const agent = this.agentFor(agentId, rules);
    if (!('buckets' in agent)) return agent;
    const parsed = parseTarget('resources', uri, 'concrete');
    if (!parsed.ok) return deny('resource_invalid', `resource URI refused: ${parsed.error}`, rules, { effect: 'deny', requirement: `read:resources:${uri}` });
    let target = parsed.value;
    if (this.followSymlinks && target.kind === 'uri' && target.uri.startsWith('file://')) {
      const physical = resolvePhysical(target.uri.slice('file://'.length));
      if (!physical.ok) return deny(physical.reason, `resource URI refused: ${physical.message}`, rules, { effect: 'deny', requirement: `read:resources:${uri}` });
      target = { ...target, uri: `file://${physical.path}` };
    }
    const requirement = `read:resources:${target.kind === 'uri' ? target.uri : uri}`;
    const granted = findCovering(agent.buckets.get('read:resources'), target);
    if (granted === undefined) return deny('resource_not_granted', `agent '${agent.id}' is not granted ${requirement} (server ${server})`, rules, { effect: 'deny', requirement });
    rules.push(allowedBy(requirement, granted));
    return { allow: true, reason: 'allowed', message: 'allowed', rules };
  }

  /**
   * completion/complete reveals values of a prompt's arguments or a resource template's
   * variables: the agent needs the same grant as for the prompt itself (exec:prompts) or for
   * seeing the template (a read:resources grant that can match one of its expansions).
   */
  decideCompletion(agentId: string | undefined, server: string, ref: { type: 'prompt' | 'resource'; name: string }): Decision {
    const rules: RuleTrace[] = [];
    const agent = this.agentFor(agentId, rules);
    if (!('buckets' in agent)) return agent;
    if (ref.type === 'prompt') {
      const requirement = `exec:prompts:${server}.${ref.name}`;
      const granted = findName(agent.buckets.get('exec:prompts'), server, ref.name);
      if (granted === undefined) return deny('prompt_not_granted', `agent '${agent.id}' is not granted ${requirement}, so it may not complete its arguments`, rules, { effect: 'deny', requirement });
      rules.push(allowedBy(requirement, granted));
      return { allow: true, reason: 'allowed', message: 'allowed', rules };
    }
    const requirement = `read:resources:${ref.name}`;
    if (!this.resourceTemplateVisible(agent.id, ref.name)) return deny('resource_not_granted', `agent '${agent.id}' holds no read:resources grant that matches ${ref.name} (server ${server}), so it may not complete it`, rules, { effect: 'deny', requirement });
    rules.push({ effect: 'allow', requirement });
    return { allow: true, reason: 'allowed', message: 'allowed', rules };
  }

  /** logging/setLevel goes to every server of the session: the agent needs exec:logging for each. */
  decideLogging(agentId: string | undefined, servers: readonly string[] | undefined): Decision {
    const rules: RuleTrace[] = [];
    const agent = this.agentFor(agentId, rules);
    if (!('buckets' in agent)) return agent;
    const bucket = agent.buckets.get('exec:logging');
    for (const server of servers ?? ['*']) {
      const requirement = `exec:logging:${server}`;
      const granted = bucket?.any ?? (server === '*' ? undefined : bucket?.bareNames.get(server));
      if (granted === undefined) return deny('logging_not_granted', `agent '${agent.id}' is not granted ${requirement}; logging/setLevel changes the log level of every server in the session`, rules, { effect: 'deny', requirement });
      rules.push(allowedBy(requirement, granted));
    }
    return { allow: true, reason: 'allowed', message: 'allowed', rules };
  }

  /** May `server` send a sampling / elicitation / roots request to this agent's client? */
  decideServerRequest(agentId: string | undefined, server: string, kind: ServerRequestKind): Decision {
    const rules: RuleTrace[] = [];
    const agent = this.agentFor(agentId, rules);
    if (!('buckets' in agent)) return agent;
    const { action, resource } = SERVER_REQUEST_SCOPE[kind];
    const requirement = `${action}:${resource}:${server}`;
    const bucket = agent.buckets.get(bucketKey(action, resource));
    const granted = bucket?.any ?? bucket?.bareNames.get(server);
    if (granted === undefined) return deny('server_request_not_granted', `server '${server}' may not send ${kind} requests to agent '${agent.id}' (needs ${requirement})`, rules, { effect: 'deny', requirement });
    rules.push(allowedBy(requirement, granted));
    return { allow: true, reason: 'allowed', message: 'allowed', rules };
  }

  /** Every grant the agent holds, its own then its roles' (views derived from the policy, such as sandbox views, read them). */
  grantsFor(agentId: string): readonly Grant[] {
    return this.agents.has(agentId) ? this.grantsOf(agentId) : [];
  }

  /** The agent's granted directories (read or write, canonical; '/' for `*`), for narrowing roots. */
  filesystemGrants(agentId: string | undefined): string[] {
    const agent = agentId === undefined ? undefined : this.agents.get(agentId);
    if (agent === undefined) return [];
    const paths = new Set<string>();
    for (const key of ['read:filesystem', 'write:filesystem']) {
      const bucket = agent.buckets.get(key);
      if (bucket === undefined) continue;
      if (bucket.any !== undefined) paths.add('/');
      for (const path of bucket.paths.keys()) paths.add(path);
    }
    return [...paths];
  }

  /**
   * Whether a tool should appear in this agent's tools/list: granted, declared validly, and its
   * argument-free scopes covered. Argument-bound scopes are checked per call.
   */
  toolVisible(agentId: string | undefined, server: string, tool: string): boolean {
    const agent = agentId === undefined ? undefined : this.agents.get(agentId);
    if (agent === undefined || findName(agent.buckets.get('exec:tools'), server, tool) === undefined) return false;
    const declaration = this.tools.get(itemKey(server, tool));
    if (declaration === undefined || !declaration.ok) return false;
    return declaration.scopes.every((scope) => scope.bound || findCovering(agent.buckets.get(bucketKey(scope.scope.action, scope.scope.resource)), scope.scope.target) !== undefined);
  }

  /** Whether the server's tool has a declaration (valid or not): undeclared tools are hidden from every agent. */
  toolDeclared(server: string, tool: string): boolean {
    return this.tools.has(itemKey(server, tool));
  }

  promptVisible(agentId: string | undefined, server: string, prompt: string): boolean {
    const agent = agentId === undefined ? undefined : this.agents.get(agentId);
    return agent !== undefined && findName(agent.buckets.get('exec:prompts'), server, prompt) !== undefined;
  }

  resourceVisible(agentId: string | undefined, server: string, uri: string): boolean {
    return this.decideResource(agentId, server, uri).allow;
  }

  /** A template is shown when some grant could match one of its expansions (its literal prefix). */
  resourceTemplateVisible(agentId: string | undefined, uriTemplate: string): boolean {
    const agent = agentId === undefined ? undefined : this.agents.get(agentId);
    const bucket = agent?.buckets.get('read:resources');
    if (bucket === undefined) return false;
    if (bucket.any !== undefined) return true;
    const literal = uriTemplate.split('{')[0] ?? '';
    return bucket.all.some((grant) => grant.scope.target.kind === 'uri' && (grant.scope.target.uri.startsWith(literal) || (grant.scope.target.prefix && literal.startsWith(grant.scope.target.uri))));
  }

  private agentFor(agentId: string | undefined, rules: RuleTrace[]): CompiledAgent | Decision {
    if (agentId === undefined || agentId.length === 0) return deny('unauthenticated', 'the caller has no agent identity', rules);
    const agent = this.agents.get(agentId);
    if (agent === undefined) return deny('agent_has_no_policy', `agent '${agentId}' has no policy; add it under agents: in a policy file`, rules);
    return agent;
  }

  private checkDeclared(agent: CompiledAgent, declaration: CompiledDeclaration | undefined, what: string, args: Readonly<Record<string, unknown>>, rules: RuleTrace[], required: boolean): Decision {
    if (declaration === undefined) {
      if (!required) return { allow: true, reason: 'allowed', message: 'allowed', rules };
      return deny('tool_not_declared', `${what} declares no scopes, so it cannot be called (anything undeclared is denied); add its scopes to the server manifest or to servers.<name>.tools.<tool>.scopes`, rules);
    }
    if (!declaration.ok) return deny('declaration_invalid', `${what} has an invalid declaration (${declaration.error})`, rules, { effect: 'deny', requirement: 'valid declaration', source: declaration.source });
    const touched: FilesystemTouch[] = [];
    for (const declared of declaration.scopes) {
      const denial = declared.bound ? this.checkBound(agent, declared, args, rules, declaration.source, touched) : this.checkStatic(agent, declared.scope.action, declared.scope.resource, declared.scope.target, declared.scope.text, undefined, rules, declaration.source);
      if (denial !== undefined) return denial;
      if (!declared.bound && declared.scope.resource === 'filesystem' && declared.scope.target.kind === 'path') {
        touched.push({ path: declared.scope.target.path, write: declared.scope.action === 'write' });
      }
    }
    return { allow: true, reason: 'allowed', message: 'allowed', rules, ...(touched.length > 0 ? { touched } : {}) };
  }

  private checkBound(agent: CompiledAgent, declared: Extract<DeclaredScope, { bound: true }>, args: Readonly<Record<string, unknown>>, rules: RuleTrace[], source: string | undefined, touched: FilesystemTouch[]): Decision | undefined {
    const expansion = expand(declared, args);
    if (!expansion.ok) return deny(expansion.reason, expansion.message, rules, { effect: 'deny', requirement: declared.text, declared: declared.text, source });
    for (const { text, target } of expansion.targets) {
      let resolved: Target = target;
      if (this.followSymlinks && target.kind === 'path') {
        const physical = canonicalizePath(text, true);
        if (!physical.ok) {
          const requirement = `${declared.action}:${declared.resource}:${text}`;
          return deny(physical.reason, `argument refused for '${declared.text}': ${physical.message}`, rules, { effect: 'deny', requirement, declared: declared.text, source });
        }
        resolved = { kind: 'path', any: false, path: physical.path };
      }
      const denial = this.checkStatic(agent, declared.action, declared.resource, resolved, `${declared.action}:${declared.resource}:${resolved.kind === 'path' ? resolved.path : text}`, declared.text, rules, source);
      if (denial !== undefined) return denial;
      if (declared.resource === 'filesystem' && target.kind === 'path' && resolved.kind === 'path') {
        // Both spellings: a change at either (the name asked for, or where it leads) changes the answer.
        const write = declared.action === 'write';
        touched.push({ path: target.path, write });
        if (resolved.path !== target.path) touched.push({ path: resolved.path, write });
      }
    }
    return undefined;
  }

  private checkStatic(agent: CompiledAgent, action: Action, resource: ResourceKind, target: Target, requirement: string, declared: string | undefined, rules: RuleTrace[], source: string | undefined): Decision | undefined {
    const granted = findCovering(agent.buckets.get(bucketKey(action, resource)), target);
    if (granted === undefined) {
      const from = declared === undefined ? '' : ` (from ${declared})`;
      return deny('scope_not_granted', `agent '${agent.id}' is not granted ${requirement}${from}`, rules, { effect: 'deny', requirement, ...(declared === undefined ? {} : { declared }), source });
    }
    rules.push(declared === undefined ? allowedBy(requirement, granted) : { ...allowedBy(requirement, granted), declared });
    return undefined;
  }

  private compileAgent(id: string): CompiledAgent {
    const buckets = new Map<string, Bucket>();
    for (const grant of this.grantsOf(id)) {
      const key = bucketKey(grant.scope.action, grant.scope.resource);
      let bucket = buckets.get(key);
      if (bucket === undefined) {
        bucket = { all: [], any: undefined, paths: new Map(), bareNames: new Map(), qualifiedNames: new Map(), serverWide: new Map() };
        buckets.set(key, bucket);
      }
      this.index(bucket, grant);
    }
    return { id, buckets };
  }

  private index(bucket: Bucket, grant: Grant): void {
    const target = grant.scope.target;
    if (target.kind === 'path' && !target.any && this.followSymlinks) {
      // The grant names what the admin meant; its real location is what the kernel will open.
      const physical = resolvePhysical(target.path);
      grant = physical.ok ? { ...grant, scope: { ...grant.scope, target: { ...target, path: physical.path } } } : grant;
    }
    bucket.all.push(grant);
    const resolved = grant.scope.target;
    if ('any' in resolved && resolved.any) bucket.any ??= grant;
    else if (resolved.kind === 'path') setFirst(bucket.paths, resolved.path, grant);
    else if (resolved.kind === 'names') {
      for (const name of resolved.names) {
        if (name.server === undefined) setFirst(bucket.bareNames, name.name, grant);
        else if (name.name === '*') setFirst(bucket.serverWide, name.server, grant);
        else setFirst(bucket.qualifiedNames, itemKey(name.server, name.name), grant);
      }
    } else if (resolved.kind === 'network' && resolved.host.type === 'any' && resolved.ports === 'any') bucket.any ??= grant;
  }

  /** The agent's own grants, then its roles' (depth first, each role once). */
  private grantsOf(id: string): Grant[] {
    const agent = this.policy.agents.get(id);
    if (agent === undefined) return [];
    const result = [...agent.grants];
    const seen = new Set<string>();
    const visit = (role: string): void => {
      if (seen.has(role)) return;
      seen.add(role);
      const definition = this.policy.roles.get(role);
      if (definition === undefined) return;
      result.push(...definition.grants);
      for (const parent of definition.extends) visit(parent);
    };
    for (const role of agent.roles) visit(role);
    return result;
  }
}

function setFirst(map: Map<string, Grant>, key: string, grant: Grant): void {
  if (!map.has(key)) map.set(key, grant);
}

function compileItem(scopes: readonly string[], source: string | undefined): CompiledDeclaration {
  const compiled: DeclaredScope[] = [];
  for (const scope of scopes) {
    const result = compileDeclared(scope);
    if (!result.ok) return { ok: false, error: result.error, source };
    compiled.push(result.value);
  }
  return { ok: true, scopes: compiled, source };
}

function allowedBy(requirement: string, grant: Grant): RuleTrace {
  return { effect: 'allow', requirement, grant: grant.scope.text, via: grant.via, source: grant.source };
}

function grantNamesTool(grant: Grant, server: string, tool: string): boolean {
  const target = grant.scope.target;
  if (target.kind !== 'names') return false;
  return target.any || target.names.some((name) => (name.server === undefined ? name.name === tool : name.server === server && (name.name === '*' || name.name === tool)));
}

function findName(bucket: Bucket | undefined, server: string, name: string): Grant | undefined {
  if (bucket === undefined) return undefined;
  return bucket.any ?? bucket.qualifiedNames.get(itemKey(server, name)) ?? bucket.serverWide.get(server) ?? bucket.bareNames.get(name);
}

/** The first grant in the bucket whose set contains the target's set. */
function findCovering(bucket: Bucket | undefined, target: Target): Grant | undefined {
  if (bucket === undefined) return undefined;
  if (bucket.any !== undefined) return bucket.any;
  if (target.kind === 'path') {
    if (target.any) return undefined;
    // Walk the path and its ancestors: a grant on any of them contains the whole subtree.
    let current = target.path;
    for (;;) {
      const hit = bucket.paths.get(current);
      if (hit !== undefined) return hit;
      if (current === '/') return undefined;
      const cut = current.lastIndexOf('/');
      current = cut <= 0 ? '/' : current.slice(0, cut);
    }
  }
  return bucket.all.find((grant) => targetCovers(grant.scope.target, target));
}
