/** One problem in a config file, with where it is and what to write instead. */
export interface ConfigProblem {
  file: string;
  line: number | undefined;
  column: number | undefined;
  /** Dotted path of the field, e.g. servers.everything.command. */
  field: string;
  message: string;
  fix: string | undefined;
}

export function formatProblem(problem: ConfigProblem): string {
  const where = problem.line === undefined ? problem.file : `${problem.file}:${problem.line}:${problem.column ?? 1}`;
  const field = problem.field === '' ? '(top level)' : problem.field;
  const fix = problem.fix === undefined ? '' : `\n    fix: ${problem.fix}`;
  return `${where}: ${field}: ${problem.message}${fix}`;
}

/** Thrown when a config cannot be used. The message lists every problem found. */
export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}
