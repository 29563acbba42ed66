/**
 * `leeway explain URL [--user U] [--group G] [--client IP] [--at ISO-TIME] [--method M]
 * [--minutes-used N] [--tunnel] [--policies DIR] [--json]`: the decision for one request and why.
 */
import { resolveRequest } from '../policy/cases.js';
import { decide } from '../policy/decide.js';
import { describeDecision, nextStep } from '../policy/explain-text.js';
import { formatProblem, loadPolicy } from '../policy/load.js';
import { parseCommandArgs, UsageError } from './args.js';

const USAGE =
  'Usage: leeway explain URL [--user U] [--group G] [--client IP] [--at ISO-TIME] [--method M] [--minutes-used N] [--tunnel] [--policies DIR] [--json]';

const OPTIONS = {
  user: { type: 'string' },
  group: { type: 'string' },
  client: { type: 'string' },
  at: { type: 'string' },
  method: { type: 'string' },
  'minutes-used': { type: 'string' },
  tunnel: { type: 'boolean' },
  policies: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export async function run(args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseCommandArgs<typeof OPTIONS>>;
  try {
    parsed = parseCommandArgs(args, OPTIONS);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`leeway explain: ${error.message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const url = positionals[0];
  const usageError = (message: string): number => {
    console.error(`leeway explain: ${message}\n${USAGE}`);
    return 2;
  };
  if (url === undefined || positionals.length > 1) return usageError('give exactly one URL');
  const now = values.at === undefined ? Date.now() : Date.parse(values.at);
  if (Number.isNaN(now)) return usageError(`invalid --at "${values.at ?? ''}": use ISO 8601, e.g. 2026-11-26T12:30:00+01:00`);
  let minutesUsed: number | undefined;
  if (values['minutes-used'] !== undefined) {
    minutesUsed = Number(values['minutes-used']);
    if (!Number.isInteger(minutesUsed) || minutesUsed < 0) return usageError(`invalid --minutes-used "${values['minutes-used']}": a whole number of minutes`);
  }
  if (values.tunnel === true && values.method !== undefined) return usageError('--tunnel means the method is unknown; drop --method');

  const loaded = await loadPolicy(values.policies ?? 'policies');
  if (!loaded.ok) {
    for (const problem of loaded.errors) console.error(formatProblem(problem));
    return 1;
  }
  const policy = loaded.policy;
  if (values.group !== undefined && !policy.groupNames.includes(values.group)) {
    return usageError(`unknown group "${values.group}" (known: ${policy.groupNames.join(', ') || 'none'})`);
  }
  let resolved: ReturnType<typeof resolveRequest>;
  try {
    resolved = resolveRequest(
      { url, method: values.method, tunnel: values.tunnel, user: values.user, group: values.group, client: values.client, minutesUsed },
      policy,
    );
  } catch {
    return usageError(`invalid URL "${url}"`);
  }
  const decision = decide(resolved.facts, policy, now, resolved.usage, { fullTrace: true });
  const at = new Date(now).toISOString();
  if (values.json === true) {
    console.log(JSON.stringify({ request: { url, ...resolved.facts, at, timeZone: policy.settings.timeZone, minutesUsed }, decision, next: nextStep(decision) }, null, 2));
    return 0;
  }
  const local = new Intl.DateTimeFormat('en-GB', { timeZone: policy.settings.timeZone, dateStyle: 'full', timeStyle: 'short' }).format(now);
  const how = resolved.facts.method === undefined ? 'CONNECT (not inspected)' : `${resolved.facts.method} ${resolved.facts.path ?? '/'}`;
  console.log(`${url}`);
  console.log(`request: ${how}, host ${resolved.facts.host}, group ${resolved.facts.group ?? '(none)'}, at ${local} (${policy.settings.timeZone})`);
  console.log(describeDecision(decision));
  return 0;
}
