/** One problem in a policy or manifest file: where it is, which field, what is wrong and what to do. */
export interface PolicyProblem {
  file: string;
  line: number | undefined;
  column: number | undefined;
  /** Dotted path of the field, e.g. agents.alice.grants.2 */
  field: string;
  message: string;
  fix: string | undefined;
}

export function formatProblem(problem: PolicyProblem): string {
  const where = problem.line === undefined ? problem.file : `${problem.file}:${problem.line}:${problem.column ?? 1}`;
  const field = problem.field === '' ? '(top level)' : problem.field;
  const fix = problem.fix === undefined ? '' : `\n    fix: ${problem.fix}`;
  return `${where}: ${field}: ${problem.message}${fix}`;
}

/** Thrown when a policy set cannot be used. Its message lists every problem found. */
export class PolicyError extends Error {
  constructor(readonly problems: PolicyProblem[]) {
    super(`invalid policy:\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`);
    this.name = 'PolicyError';
  }
}
