/** `leeway check [DIR]`: validate a policy folder, print every problem as `file:line:col message`. */
import { formatProblem, loadPolicy } from '../policy/load.js';
import { parseCommandArgs, UsageError } from './args.js';

export async function run(args: string[]): Promise<number> {
  let positionals: string[];
  try {
    ({ positionals } = parseCommandArgs(args, {}));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`leeway check: ${error.message}\nUsage: leeway check [DIR]`);
    return 2;
  }
  if (positionals.length > 1) {
    console.error('leeway check: one folder at most\nUsage: leeway check [DIR]');
    return 2;
  }
  const dir = positionals[0] ?? 'policies';
  const result = await loadPolicy(dir);
  if (!result.ok) {
    for (const problem of result.errors) console.log(formatProblem(problem));
    console.log(`${result.errors.length} error${result.errors.length === 1 ? '' : 's'}`);
    return 1;
  }
  for (const warning of result.warnings) console.log(`${formatProblem(warning)} (warning)`);
  const { files, categories, domains, rules } = result.policy.stats;
  console.log(`ok: ${files} files, ${categories} categories, ${domains} domains, ${rules} rules`);
  return 0;
}
