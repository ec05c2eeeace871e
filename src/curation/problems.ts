// Config checks for curation, run when the config loads: a rename that would give two tools of
// one server the same client-side name, and entries that contradict themselves. An entry for a
// tool the server does not list is only known at run time; it is a warning then (the log names
// it), because servers add and drop tools and a stale entry changes nothing a client can reach.
import type { ConfigProblem } from '../config/errors.js';
import type { CuratedServerConfig, ToolCurationConfig } from './config.js';
import { effectiveCuration } from './view.js';

export type Locator = (path: readonly string[]) => { line: number; column: number } | undefined;

export function curationProblems(servers: Readonly<Record<string, CuratedServerConfig>>, file: string, where: Locator): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const problem = (path: string[], message: string, fix: string): void => {
    const position = where(path);
    problems.push({ file, line: position?.line, column: position?.column, field: path.join('.'), message, fix });
  };
  for (const [server, config] of Object.entries(servers)) {
    for (const [tool, entry] of Object.entries(config.tools ?? {})) selfContradiction(entry, ['servers', server, 'tools', tool], problem);
    collisions(server, config, undefined, problem);
    for (const [agent, own] of Object.entries(config.agents ?? {})) {
      for (const [tool, entry] of Object.entries(own.tools ?? {})) selfContradiction(entry, ['servers', server, 'agents', agent, 'tools', tool], problem);
      collisions(server, config, agent, problem);
    }
  }
  // One collision can show up in the server's view and in every agent's: report it once.
  const seen = new Set<string>();
  return problems.filter((item) => {
    const key = `${item.field}\u0000${item.message}`;
    return seen.has(key) ? false : (seen.add(key), true);
  });
}

function selfContradiction(entry: ToolCurationConfig, path: string[], problem: (path: string[], message: string, fix: string) => void): void {
  if (entry.hidden === true && entry.rename !== undefined) problem([...path, 'rename'], 'a hidden tool is not shown, so it has no name to rename', 'remove rename, or remove hidden: true');
}

/** In one view (the server's, or one agent's), no two shown tools may end up with the same name. */
function collisions(server: string, config: CuratedServerConfig, agent: string | undefined, problem: (path: string[], message: string, fix: string) => void): void {
  const effective = effectiveCuration(config, agent);
  const claimed = new Map<string, string>();
  // A configured tool that keeps its name claims it (entries under tools: name tools the server has).
  const configured = new Set([...Object.keys(config.tools ?? {}), ...Object.keys(agent === undefined ? {} : (config.agents?.[agent]?.tools ?? {}))]);
  for (const name of configured) {
    const entry = effective.get(name);
    if (entry?.hidden !== true && entry?.rename === undefined) claimed.set(name, name);
  }
  // The server's renames claim their names first, so a collision in an agent's view is reported at the agent's entry.
  const ownRename = (name: string): number => (agent !== undefined && config.agents?.[agent]?.tools?.[name]?.rename !== undefined ? 1 : 0);
  const ordered = [...effective.entries()].sort(([a], [b]) => ownRename(a) - ownRename(b) || (a < b ? -1 : 1));
  for (const [name, entry] of ordered) {
    if (entry.hidden === true || entry.rename === undefined || entry.rename === name) continue;
    const holder = claimed.get(entry.rename);
    if (holder !== undefined) {
      const ownPath = agent !== undefined && ownRename(name) === 1 ? ['servers', server, 'agents', agent, 'tools', name, 'rename'] : ['servers', server, 'tools', name, 'rename'];
      const whose = agent === undefined ? '' : ` for agent '${agent}'`;
      problem(ownPath, `renaming '${name}' to '${entry.rename}' collides${whose} with ${holder === entry.rename ? `the tool '${holder}'` : `'${holder}', also renamed to '${entry.rename}'`}: a client could not tell them apart`, `choose another name for ${name}, or hide or rename '${holder}'`);
      continue;
    }
    claimed.set(entry.rename, name);
  }
}
