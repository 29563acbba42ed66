/** `leeway test [DIR]`: run the policy test cases (DIR/tests/*.yaml, DIR/*.test.yaml) with the real engine. */
import { relative } from 'node:path';
import { loadCases, runCase } from '../policy/cases.js';
import { formatProblem, loadPolicy } from '../policy/load.js';
import { parseCommandArgs, UsageError } from './args.js';

export async function run(args: string[]): Promise<number> {
  let positionals: string[];
  let verbose = false;
  try {
    const parsed = parseCommandArgs(args, { verbose: { type: 'boolean', short: 'v' } });
    positionals = parsed.positionals;
    verbose = parsed.values.verbose === true;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`leeway test: ${error.message}\nUsage: leeway test [DIR] [--verbose]`);
    return 2;
  }
  const dir = positionals[0] ?? 'policies';
  const loaded = await loadPolicy(dir);
  if (!loaded.ok) {
    for (const problem of loaded.errors) console.log(formatProblem(problem));
    return 1;
  }
  const { cases, errors } = await loadCases(dir);
  for (const problem of errors) console.log(formatProblem(problem));
  if (errors.length > 0) return 1;
  if (cases.length === 0) {
    console.log(`no test cases in ${dir}/tests/*.yaml or ${dir}/*.test.yaml`);
    return 1;
  }
  let failed = 0;
  const covered = new Set<string>();
  for (const policyCase of cases) {
    const result = runCase(policyCase, loaded.policy);
    if (result.decision !== undefined) covered.add(result.decision.ruleId);
    const where = `${relative(process.cwd(), policyCase.file) || policyCase.file}:${policyCase.line}`;
    if (result.passed) {
      if (verbose) console.log(`ok    ${where} ${policyCase.name}`);
    } else {
      failed++;
      console.log(`FAIL  ${where} ${policyCase.name}: ${result.failure ?? ''}`);
    }
  }
  const untested = loaded.policy.ruleSummaries.filter((rule) => !covered.has(rule.id)).map((rule) => rule.id);
  if (untested.length > 0) console.log(`note: no case ends at rule ${untested.join(', ')}`);
  console.log(`${cases.length - failed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}
