/**
 * The pure decision: facts + compiled policy + now + usage → Decision. No I/O, no clock, no logger.
 */
import { internalsOf } from './compiled.js';
import type { CompiledRule } from './compiled.js';
import { formatLocalTime, localTime, scheduleActive } from './schedule.js';
import type { CompiledPolicy, Decision, EffectiveAction, QuotaState, RequestFacts, RuleTrace, UsageView } from './types.js';

export interface DecideOptions {
  /**
   * Give a reason for every rule before the match (for explain and tests). Without it the trace
   * holds only the rules skipped for lack of method/path and the matching rule, which keeps the
   * request path free of string building.
   */
  readonly fullTrace?: boolean;
}

const ALLOW: EffectiveAction = Object.freeze({ kind: 'allow' });

// evaluate() answers with a number so the request path allocates nothing for a rule that misses.
const MATCH = 0;
const INSPECT = 1;
const enum Miss {
  Category = 2,
  Site,
  Host,
  Group,
  Schedule,
  Method,
  Path,
}
type Outcome = typeof MATCH | typeof INSPECT | Miss;

interface Context {
  readonly host: string;
  readonly category: string | undefined;
  readonly site: string | undefined;
  readonly facts: RequestFacts;
  readonly now: number;
  readonly verbose: boolean;
}

const quotaRules = new WeakMap<CompiledPolicy, boolean>();

/**
 * Whether decide() can read `usage` under this policy: only quota rules do. A caller that must
 * work to build a usage view (the proxy asks accounting per request) may pass NO_USAGE when
 * this is false, and the decisions are the same.
 */
export function readsUsage(policy: CompiledPolicy): boolean {
  let reads = quotaRules.get(policy);
  if (reads === undefined) {
    reads = internalsOf(policy).rules.some((rule) => rule.quota !== undefined);
    quotaRules.set(policy, reads);
  }
  return reads;
}

export function decide(facts: RequestFacts, policy: CompiledPolicy, now: number, usage: UsageView, options?: DecideOptions): Decision {
  const internals = internalsOf(policy);
  const { host, category, site } = internals.classifier.classifyRaw(facts.host);
  const verbose = options?.fullTrace === true;
  const rules = verbose
    ? internals.rules
    : category === undefined
      ? internals.candidatesWithoutCategory
      : (internals.candidatesByCategory.get(category) ?? internals.candidatesWithoutCategory);
  const ctx: Context = { host, category, site, facts, now, verbose };
  const trace: RuleTrace[] = [];
  let needsInspection = false;

  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i] as CompiledRule;
    const outcome = evaluate(rule, ctx);
    if (outcome === INSPECT) {
      needsInspection = true;
      trace.push(rule.inspectTrace);
      continue;
    }
    if (outcome !== MATCH) {
      if (verbose) trace.push({ ruleId: rule.id, matched: false, reason: missReason(outcome, rule, ctx) });
      continue;
    }
    // A quota counts against the matched category or site; without one there is nothing to count.
    let action = rule.action;
    let quota: QuotaState | undefined;
    if (rule.quota !== undefined) {
      const name = rule.quota.per === 'site' ? site : category;
      if (name === undefined) {
        if (verbose) trace.push({ ruleId: rule.id, matched: false, reason: `the host has no ${rule.quota.per} to count minutes against` });
        continue;
      }
      const scope = { kind: rule.quota.per, name };
      const used = usage.minutesUsedToday(scope);
      const exhausted = used >= rule.quota.minutesPerDay;
      quota = { scope, minutesPerDay: rule.quota.minutesPerDay, minutesUsed: used, minutesLeft: Math.max(0, rule.quota.minutesPerDay - used), exhausted };
      action = exhausted ? rule.quota.exhausted : ALLOW;
    }
    trace.push(verbose ? { ruleId: rule.id, matched: true, reason: matchReason(rule, ctx, quota) } : rule.matchTrace);
    return {
      action,
      ruleAction: rule.actionKind,
      ruleId: rule.id,
      description: rule.description,
      category,
      site,
      quota,
      needsInspection: needsInspection || action.kind === 'readonly',
      trace,
    };
  }
  const fallback = internals.default;
  return {
    action: fallback.action,
    ruleAction: fallback.actionKind,
    ruleId: 'default',
    description: fallback.description,
    category,
    site,
    quota: undefined,
    needsInspection: needsInspection || fallback.action.kind === 'readonly',
    trace,
  };
}

function evaluate(rule: CompiledRule, ctx: Context): Outcome {
  if (rule.categories !== undefined && (ctx.category === undefined || !rule.categories.has(ctx.category))) return Miss.Category;
  if (rule.sites !== undefined && (ctx.site === undefined || !rule.sites.has(ctx.site))) return Miss.Site;
  if (rule.hosts !== undefined && rule.hosts.lookup(ctx.host) === undefined) return Miss.Host;
  if (rule.groups !== undefined && (ctx.facts.group === undefined || !rule.groups.has(ctx.facts.group))) return Miss.Group;
  if (rule.schedules !== undefined) {
    let active = false;
    for (const schedule of rule.schedules) {
      if (scheduleActive(schedule, ctx.now)) {
        active = true;
        break;
      }
    }
    if (!active) return Miss.Schedule;
  }
  let unknown = false;
  if (rule.methods !== undefined) {
    if (ctx.facts.method === undefined) unknown = true;
    else if (!rule.methods.has(ctx.facts.method)) return Miss.Method;
  }
  if (rule.paths !== undefined) {
    if (ctx.facts.path === undefined) unknown = true;
    else if (!rule.paths.test(ctx.facts.path)) return Miss.Path;
  }
  return unknown ? INSPECT : MATCH;
}

function missReason(outcome: Miss, rule: CompiledRule, ctx: Context): string {
  switch (outcome) {
    case Miss.Category:
      return `category ${ctx.category ?? '(none)'} is not ${list(rule.categories)}`;
    case Miss.Site:
      return `site ${ctx.site ?? '(none)'} is not ${list(rule.sites)}`;
    case Miss.Host:
      return `host ${ctx.host} is not under ${list(rule.hostList)}`;
    case Miss.Group:
      return `group ${ctx.facts.group ?? '(none)'} is not ${list(rule.groups)}`;
    case Miss.Schedule: {
      const first = rule.schedules?.[0];
      const when = first === undefined ? '' : ` on ${formatLocalTime(localTime(first.timeZone, ctx.now))} (${first.timeZone})`;
      return `schedule ${list(rule.schedules?.map((s) => s.name))} is not active${when}`;
    }
    case Miss.Method:
      return `method ${ctx.facts.method ?? ''} is not ${list(rule.methods)}`;
    case Miss.Path:
      return `path ${ctx.facts.path ?? ''} does not match ${list(rule.pathList)}`;
  }
}

function matchReason(rule: CompiledRule, ctx: Context, quota: QuotaState | undefined): string {
  const parts: string[] = [];
  if (rule.categories !== undefined) parts.push(`category ${ctx.category ?? ''}`);
  if (rule.sites !== undefined) parts.push(`site ${ctx.site ?? ''}`);
  if (rule.hosts !== undefined) parts.push(`host under ${list(rule.hostList)}`);
  if (rule.groups !== undefined) parts.push(`group ${ctx.facts.group ?? ''}`);
  if (rule.schedules !== undefined) {
    const first = rule.schedules[0];
    const when = first === undefined ? '' : ` on ${formatLocalTime(localTime(first.timeZone, ctx.now))} (${first.timeZone})`;
    parts.push(`schedule ${list(rule.schedules.map((s) => s.name))} active${when}`);
  }
  if (rule.methods !== undefined) parts.push(`method ${ctx.facts.method ?? ''}`);
  if (rule.paths !== undefined) parts.push(`path ${ctx.facts.path ?? ''} matches ${list(rule.pathList)}`);
  let text = parts.length === 0 ? 'matches every request' : `matches: ${parts.join(', ')}`;
  if (quota !== undefined) {
    text += quota.exhausted
      ? `; ${quota.minutesUsed} of ${quota.minutesPerDay} minutes used today for ${quota.scope.kind} ${quota.scope.name}: budget used up`
      : `; ${quota.minutesUsed} of ${quota.minutesPerDay} minutes used today for ${quota.scope.kind} ${quota.scope.name}: ${quota.minutesLeft} left`;
  }
  return text;
}

function list(values: Iterable<string> | undefined): string {
  const items = values === undefined ? [] : [...values];
  return items.length === 1 ? (items[0] ?? '') : `any of ${items.join(', ')}`;
}
