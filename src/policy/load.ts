/**
 * Load a policy folder: read every policy file, validate it against the JSON Schema, merge the
 * files, check what the schema cannot (references, networks, zones, times, shadowed rules) and
 * compile. Every problem is reported with `file:line:col`, all of them, not only the first.
 *
 * Policy files are the `*.yaml` / `*.yml` files directly in the folder, merged in name order;
 * `*.test.yaml` files and sub-folders (`tests/`, `lists/`) are not merged as policy.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { LeewayError } from '../errors.js';
import { NetworkSet, parseNetwork } from '../net/cidr.js';
import { NEEDS_INSPECTION_REASON, PolicyImpl } from './compiled.js';
import type { CompiledDefault, CompiledRule } from './compiled.js';
import { DomainIndex, HostClassifier, normalizeHost, parseDomainList } from './host.js';
import { DAY_NAMES, isValidTimeZone, parseClock } from './schedule.js';
import type { CompiledSchedule, TimeRange } from './schedule.js';
import { schemaErrors } from './schema.js';
import type { CompiledPolicy, EffectiveAction, ExhaustedAction, Settings } from './types.js';
import { formatPath, YamlSource } from './yaml-source.js';
import type { SourcePosition, YamlPath } from './yaml-source.js';

export interface PolicyProblem {
  file: string;
  line: number;
  col: number;
  message: string;
}

export type LoadResult = { ok: true; policy: CompiledPolicy; warnings: PolicyProblem[] } | { ok: false; errors: PolicyProblem[] };

/** `file:line:col message`, the file relative to the current directory. */
export function formatProblem(p: PolicyProblem): string {
  const file = relative(process.cwd(), p.file) || p.file;
  return `${file}:${p.line}:${p.col} ${p.message}`;
}

export function isPolicyFileName(name: string): boolean {
  return /\.ya?ml$/.test(name) && !/\.test\.ya?ml$/.test(name);
}

// Raw shapes after schema validation (the schema guarantees these types).
type StringOrList = string | string[];
interface RawActionOptions {
  continueMinutes?: number;
  purposeQuestion?: boolean;
  alternative?: { name: string; url: string };
  reason?: string;
}
interface RawRule extends RawActionOptions {
  id: string;
  description: string;
  category?: StringOrList;
  site?: StringOrList;
  host?: StringOrList;
  group?: StringOrList;
  schedule?: StringOrList;
  method?: StringOrList;
  path?: StringOrList;
  action: CompiledRule['actionKind'];
  quota?: { minutesPerDay: number; per?: 'category' | 'site'; then: ExhaustedAction['kind'] };
}
interface RawDefault extends RawActionOptions {
  description?: string;
  action: Exclude<CompiledRule['actionKind'], 'quota'>;
}
interface RawFile {
  settings?: Record<string, unknown>;
  categories?: Record<string, { description?: string; kind?: 'leisure' | 'business' | 'other'; domains?: string[]; lists?: string[] }>;
  sites?: Record<string, string[]>;
  groups?: Record<string, { users?: string[]; networks?: string[] }>;
  schedules?: Record<string, { timeZone?: string; ranges: { days?: string[]; from: string; to: string }[] }>;
  rules?: RawRule[];
  default?: RawDefault;
}

interface Located<T> {
  readonly value: T;
  readonly src: YamlSource;
  readonly path: YamlPath;
}

class Problems {
  readonly errors: PolicyProblem[] = [];
  readonly warnings: PolicyProblem[] = [];

  error(pos: SourcePosition, message: string): void {
    this.errors.push({ ...pos, message });
  }

  warn(pos: SourcePosition, message: string): void {
    this.warnings.push({ ...pos, message });
  }
}

function where(pos: SourcePosition): string {
  return `${relative(process.cwd(), pos.file) || pos.file}:${pos.line}:${pos.col}`;
}

const toList = (value: StringOrList | undefined): string[] | undefined => (value === undefined ? undefined : typeof value === 'string' ? [value] : value);

// Settings keys merged one level down: `proxy.clients` may come from one file and `proxy.auth` from another.
const NESTED_SETTINGS = new Set(['anonymity', 'interception', 'proxy', 'tls']);

export async function loadPolicy(dir: string): Promise<LoadResult> {
  const root = resolve(dir);
  const problems = new Problems();
  let names: string[];
  try {
    names = (await readdir(root, { withFileTypes: true })).filter((entry) => entry.isFile() && isPolicyFileName(entry.name)).map((entry) => entry.name);
  } catch (error) {
    return { ok: false, errors: [{ file: root, line: 1, col: 1, message: `cannot read policy folder: ${(error as NodeJS.ErrnoException).code ?? String(error)}` }] };
  }
  names.sort();
  if (names.length === 0) return { ok: false, errors: [{ file: root, line: 1, col: 1, message: 'no policy files (*.yaml) in this folder' }] };

  const hash = createHash('sha256');
  const sources: { src: YamlSource; data: RawFile }[] = [];
  for (const name of names) {
    const file = join(root, name);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      problems.error({ file, line: 1, col: 1 }, `cannot read file: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
      continue;
    }
    hash.update(`${name}\0${text}\0`);
    const src = new YamlSource(file, text);
    const syntax = src.syntaxErrors();
    for (const problem of syntax) problems.error(problem.pos, problem.message);
    if (syntax.length > 0) continue;
    const data: unknown = src.doc.toJS() ?? {};
    const invalid = await schemaErrors(data);
    for (const error of invalid) problems.error(src.at(error.path, error.onKey), error.message);
    const usable = withoutInvalidEntries(data, invalid.map((error) => error.path));
    if (usable !== undefined) sources.push({ src, data: usable });
  }

  const compiled = await compile(sources, problems, hash);
  if (problems.errors.length > 0 || compiled === undefined) return { ok: false, errors: sortProblems(problems.errors) };
  return { ok: true, policy: compiled, warnings: sortProblems(problems.warnings) };
}

function sortProblems(list: PolicyProblem[]): PolicyProblem[] {
  return list.sort((a, b) => (a.file === b.file ? a.line - b.line || a.col - b.col : a.file < b.file ? -1 : 1));
}

/**
 * Drop the entries (a rule, a category, a setting) that failed the schema, so the semantic checks
 * still run on the rest of the file and every mistake is reported in one pass.
 */
function withoutInvalidEntries(data: unknown, errorPaths: readonly YamlPath[]): RawFile | undefined {
  if (errorPaths.length === 0) return data as RawFile;
  if (errorPaths.some((path) => path.length === 0) || typeof data !== 'object' || data === null) return undefined;
  const copy: Record<string, unknown> = { ...(data as Record<string, unknown>) };
  for (const path of errorPaths) {
    const [section, entry] = path;
    if (typeof section !== 'string') continue;
    const value = copy[section];
    if (entry === undefined || section === 'default' || typeof value !== 'object' || value === null) {
      delete copy[section];
    } else if (Array.isArray(value)) {
      copy[section] = value.map((item, index) => (index === entry ? undefined : item));
    } else {
      const rest: Record<string, unknown> = { ...(value as Record<string, unknown>) };
      delete rest[String(entry)];
      copy[section] = rest;
    }
  }
  return copy as RawFile;
}

async function compile(sources: { src: YamlSource; data: RawFile }[], problems: Problems, hash: ReturnType<typeof createHash>): Promise<CompiledPolicy | undefined> {
  // 1. Merge named sections; a name defined twice is an error wherever it is.
  const categories = new Map<string, Located<NonNullable<RawFile['categories']>[string]>>();
  const sites = new Map<string, Located<string[]>>();
  const groups = new Map<string, Located<NonNullable<RawFile['groups']>[string]>>();
  const schedules = new Map<string, Located<NonNullable<RawFile['schedules']>[string]>>();
  const settings = new Map<string, Located<unknown>>();
  const rules: Located<RawRule>[] = [];
  let rawDefault: Located<RawDefault> | undefined;

  const define = <T>(map: Map<string, Located<T>>, kind: string, name: string, value: T, src: YamlSource, path: YamlPath): void => {
    const earlier = map.get(name);
    if (earlier !== undefined) {
      problems.error(src.at(path, true), `${kind} "${name}" is already defined at ${where(earlier.src.at(earlier.path, true))}`);
      return;
    }
    map.set(name, { value, src, path });
  };

  for (const { src, data } of sources) {
    for (const [name, value] of Object.entries(data.categories ?? {})) define(categories, 'category', name, value, src, ['categories', name]);
    for (const [name, value] of Object.entries(data.sites ?? {})) define(sites, 'site', name, value, src, ['sites', name]);
    for (const [name, value] of Object.entries(data.groups ?? {})) define(groups, 'group', name, value, src, ['groups', name]);
    for (const [name, value] of Object.entries(data.schedules ?? {})) define(schedules, 'schedule', name, value, src, ['schedules', name]);
    for (const [key, value] of Object.entries(data.settings ?? {})) {
      if (NESTED_SETTINGS.has(key) && typeof value === 'object' && value !== null) {
        for (const [sub, subValue] of Object.entries(value)) define(settings, 'setting', `${key}.${sub}`, subValue, src, ['settings', key, sub]);
      } else {
        define(settings, 'setting', key, value, src, ['settings', key]);
      }
    }
    // Holes are rules that failed the schema; indexes stay those of the file for positions.
    (data.rules ?? []).forEach((rule: RawRule | undefined, index) => {
      if (rule !== undefined) rules.push({ value: rule, src, path: ['rules', index] });
    });
    if (data.default !== undefined) {
      if (rawDefault !== undefined) problems.error(src.at(['default'], true), `default is already defined at ${where(rawDefault.src.at(rawDefault.path, true))}`);
      else rawDefault = { value: data.default, src, path: ['default'] };
    }
  }

  // 2. Settings, with defaults; file paths resolved against the file that names them.
  const setting = <T>(key: string, fallback: T): T => (settings.get(key)?.value as T | undefined) ?? fallback;
  const pathSetting = (key: string): string | undefined => {
    const located = settings.get(key);
    return located === undefined ? undefined : resolve(dirname(located.src.file), located.value as string);
  };
  const checkNetworks = (key: string): void => {
    const located = settings.get(key);
    if (located === undefined) return;
    (located.value as string[]).forEach((text, index) => checkNetwork(text, located.src, [...located.path, index], problems));
  };
  for (const key of ['proxy.clients', 'proxy.egress']) {
    const located = settings.get(key);
    if (located === undefined) continue;
    if (key === 'proxy.egress') {
      const egress = located.value as { allow?: string[]; deny?: string[] };
      for (const side of ['allow', 'deny'] as const) egress[side]?.forEach((text, index) => checkNetwork(text, located.src, [...located.path, side, index], problems));
    } else {
      checkNetworks(key);
    }
  }
  const trusted = settings.get('proxy.trustedHeader');
  if (trusted !== undefined) (trusted.value as { from: string[] }).from.forEach((text, index) => checkNetwork(text, trusted.src, [...trusted.path, 'from', index], problems));

  const zoneSetting = settings.get('timeZone');
  const timeZone = (zoneSetting?.value as string | undefined) ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zoneSetting !== undefined && !isValidTimeZone(timeZone)) problems.error(zoneSetting.src.at(zoneSetting.path), `unknown time zone "${timeZone}"`);

  const doNotInspectSetting = settings.get('interception.doNotInspect');
  const doNotInspect = (doNotInspectSetting?.value as string[] | undefined) ?? ['finance', 'health'];
  if (doNotInspectSetting !== undefined) {
    doNotInspect.forEach((name, index) => {
      if (!categories.has(name)) problems.error(doNotInspectSetting.src.at([...doNotInspectSetting.path, index]), `unknown category "${name}" in settings.interception.doNotInspect`);
    });
  }
  const auth = setting<{ htpasswd?: string; required?: boolean; realm?: string }>('proxy.auth', {});
  const authSetting = settings.get('proxy.auth');
  const timeouts = setting<Partial<Settings['proxy']['timeouts']>>('proxy.timeouts', {});
  const egress = setting<{ allow?: string[]; deny?: string[] }>('proxy.egress', {});
  const trustedHeader = trusted?.value as { name: string; from: string[] } | undefined;
  const finalSettings: Settings = deepFreeze({
    timeZone,
    anonymity: { minGroupSize: setting('anonymity.minGroupSize', 5) },
    interception: { enabled: setting('interception.enabled', true), doNotInspect: [...doNotInspect] },
    accessLog: setting('accessLog', 'anonymous'),
    proxy: {
      clients: [...setting<string[]>('proxy.clients', ['127.0.0.0/8', '::1/128'])],
      connectPorts: [...setting<number[]>('proxy.connectPorts', [443])],
      auth: {
        htpasswd: auth.htpasswd === undefined || authSetting === undefined ? undefined : resolve(dirname(authSetting.src.file), auth.htpasswd),
        required: auth.required ?? false,
        realm: auth.realm ?? 'Leeway',
      },
      trustedHeader: trustedHeader === undefined ? undefined : { name: trustedHeader.name, from: [...trustedHeader.from] },
      egress: { allow: [...(egress.allow ?? ['0.0.0.0/0', '::/0'])], deny: [...(egress.deny ?? [])] },
      hosts: { ...setting<Record<string, string>>('proxy.hosts', {}) },
      pacBypass: [...setting<string[]>('proxy.pacBypass', ['localhost', '127.0.0.1', '::1'])],
      timeouts: {
        headersMs: timeouts.headersMs ?? 30_000,
        idleMs: timeouts.idleMs ?? 120_000,
        upstreamMs: timeouts.upstreamMs ?? 30_000,
        drainMs: timeouts.drainMs ?? 10_000,
      },
    },
    tls: {
      caCert: pathSetting('tls.caCert'),
      caKey: pathSetting('tls.caKey'),
      extraCaBundle: pathSetting('tls.extraCaBundle'),
      certCacheSize: setting('tls.certCacheSize', 1000),
    },
  });

  // 3. Categories and sites → one host classifier.
  const classifier = new HostClassifier();
  const categoryKinds: Record<string, 'leisure' | 'business' | 'other'> = {};
  // Read every list file at once (hundreds of UT1 lists are common), then add them in policy order.
  const listTexts = new Map<string, Promise<string | NodeJS.ErrnoException>>();
  for (const { value, src } of categories.values()) {
    for (const listPath of value.lists ?? []) {
      const file = resolve(dirname(src.file), listPath);
      if (!listTexts.has(file)) listTexts.set(file, readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => error));
    }
  }
  await Promise.all(listTexts.values());
  for (const [name, { value, src, path }] of categories) {
    categoryKinds[name] = value.kind ?? 'other';
    for (const domain of value.domains ?? []) classifier.addCategory(domain, name);
    for (const [index, listPath] of (value.lists ?? []).entries()) {
      const file = resolve(dirname(src.file), listPath);
      const text = await listTexts.get(file);
      if (typeof text !== 'string') {
        problems.error(src.at([...path, 'lists', index]), `cannot read list file "${listPath}": ${text?.code ?? String(text)}`);
        continue;
      }
      hash.update(`${name}\0${listPath}\0${text}\0`);
      const parsed = parseDomainList(text);
      for (const bad of parsed.bad) problems.warn({ file, line: bad.line, col: 1 }, `ignored "${bad.text}": not a domain`);
      for (const domain of parsed.domains) classifier.addCategory(domain, name);
    }
  }
  for (const [name, { value }] of sites) for (const domain of value) classifier.addSite(domain, name);

  // 4. Groups: users first (first group wins), then networks (most specific wins).
  const userGroups = new Map<string, string>();
  const networkEntries: [string, string][] = [];
  for (const [name, { value, src, path }] of groups) {
    for (const user of value.users ?? []) if (!userGroups.has(user)) userGroups.set(user, name);
    (value.networks ?? []).forEach((text, index) => {
      if (checkNetwork(text, src, [...path, 'networks', index], problems)) networkEntries.push([text, name]);
    });
  }

  // 5. Schedules.
  const compiledSchedules = new Map<string, CompiledSchedule>();
  for (const [name, { value, src, path }] of schedules) {
    const zone = value.timeZone ?? timeZone;
    if (value.timeZone !== undefined && !isValidTimeZone(value.timeZone)) {
      problems.error(src.at([...path, 'timeZone']), `unknown time zone "${value.timeZone}"`);
      continue;
    }
    const ranges: TimeRange[] = [];
    value.ranges.forEach((range, index) => {
      const from = parseClock(range.from);
      const to = parseClock(range.to);
      if (from === undefined) problems.error(src.at([...path, 'ranges', index, 'from']), `invalid time "${range.from}": use HH:MM from 00:00 to 24:00`);
      if (to === undefined) problems.error(src.at([...path, 'ranges', index, 'to']), `invalid time "${range.to}": use HH:MM from 00:00 to 24:00`);
      if (from === undefined || to === undefined) return;
      if (from === to || (from === 0 && to === 1440)) {
        if (from === to) {
          problems.error(src.at([...path, 'ranges', index]), `empty range: from and to are both ${range.from}`);
          return;
        }
      }
      if (from === 1440) {
        problems.error(src.at([...path, 'ranges', index, 'from']), `invalid time "${range.from}": a range cannot start at 24:00`);
        return;
      }
      const days = (range.days ?? DAY_NAMES).reduce((bits, day) => bits | (1 << DAY_NAMES.indexOf(day as (typeof DAY_NAMES)[number])), 0);
      ranges.push({ days, from, to: to === 0 ? 1440 : to });
    });
    compiledSchedules.set(name, Object.freeze({ name, timeZone: zone, ranges: Object.freeze(ranges) }));
  }

  // 6. Rules, in file order then rule order.
  const compiledRules: CompiledRule[] = [];
  const ruleIds = new Map<string, Located<RawRule>>();
  let catchAll: Located<RawRule> | undefined;
  for (const located of rules) {
    const { value: rule, src, path } = located;
    const earlier = ruleIds.get(rule.id);
    if (earlier !== undefined) {
      problems.error(src.at([...path, 'id']), `duplicate rule id "${rule.id}" (first defined at ${where(earlier.src.at([...earlier.path, 'id']))})`);
    } else {
      ruleIds.set(rule.id, located);
    }
    if (catchAll !== undefined) {
      problems.error(src.at([...path, 'id']), `rule "${rule.id}" can never match: rule "${catchAll.value.id}" at ${where(catchAll.src.at([...catchAll.path, 'id']))} matches every request before it`);
    } else {
      const shadow = rules.slice(0, rules.indexOf(located)).find((earlier) => shadows(earlier.value, rule));
      if (shadow !== undefined) {
        problems.error(
          src.at([...path, 'id']),
          `rule "${rule.id}" can never match: rule "${shadow.value.id}" at ${where(shadow.src.at([...shadow.path, 'id']))} matches every request it would`,
        );
      }
    }
    const refs = (key: 'category' | 'site' | 'group' | 'schedule', known: ReadonlyMap<string, unknown>): string[] | undefined => {
      const names = toList(rule[key]);
      names?.forEach((name, index) => {
        if (!known.has(name)) problems.error(src.at(typeof rule[key] === 'string' ? [...path, key] : [...path, key, index]), `rule "${rule.id}": unknown ${key} "${name}"`);
      });
      return names;
    };
    const categoryNames = refs('category', categories);
    const siteNames = refs('site', sites);
    const groupNames = refs('group', groups);
    const scheduleNames = refs('schedule', schedules);
    const hostList = toList(rule.host)?.map(normalizeHost);
    let hosts: DomainIndex<true> | undefined;
    if (hostList !== undefined) {
      hosts = new DomainIndex<true>();
      for (const host of hostList) hosts.add(host, true);
    }
    const pathList = toList(rule.path);
    const methods = toList(rule.method);
    const action = buildAction(rule, rule.action === 'quota' ? (rule.quota?.then ?? 'coach') : rule.action, src, path, problems);
    if (rule.action === 'quota' && rule.quota === undefined) problems.error(src.at([...path, 'action']), `rule "${rule.id}": action quota needs a quota section (minutesPerDay, then)`);
    if (rule.action !== 'quota' && rule.quota !== undefined) problems.error(src.at([...path, 'quota'], true), `rule "${rule.id}": a quota section needs action quota`);
    const isCatchAll = [rule.category, rule.site, rule.host, rule.group, rule.schedule, rule.method, rule.path].every((c) => c === undefined) && rule.action !== 'quota';
    if (isCatchAll && catchAll === undefined) catchAll = located;
    compiledRules.push(
      Object.freeze({
        index: compiledRules.length,
        id: rule.id,
        description: rule.description,
        actionKind: rule.action,
        categories: categoryNames && new Set(categoryNames),
        sites: siteNames && new Set(siteNames),
        hosts,
        hostList,
        groups: groupNames && new Set(groupNames),
        schedules: scheduleNames?.flatMap((name) => {
          const schedule = compiledSchedules.get(name);
          return schedule === undefined ? [] : [schedule];
        }),
        methods: methods && new Set(methods),
        paths: pathList && globsToRegExp(pathList),
        pathList,
        action: rule.action === 'quota' ? ALLOW_ACTION : action,
        quota:
          rule.quota === undefined || rule.action !== 'quota'
            ? undefined
            : Object.freeze({ minutesPerDay: rule.quota.minutesPerDay, per: rule.quota.per ?? 'category', exhausted: action as ExhaustedAction }),
        catchAll: isCatchAll,
        source: src.at(path),
        matchTrace: Object.freeze({ ruleId: rule.id, matched: true, reason: 'matched' }),
        inspectTrace: Object.freeze({ ruleId: rule.id, matched: false, reason: NEEDS_INSPECTION_REASON, needsInspection: true }),
      }),
    );
  }

  // A rule that needs the inside of HTTPS requests where they are never inspected matches only plain HTTP.
  const interceptionOn = finalSettings.interception.enabled;
  const neverInspected = new Set(finalSettings.interception.doNotInspect);
  for (const located of rules) {
    const rule = located.value;
    if (rule.method === undefined && rule.path === undefined) continue;
    const categoriesOfRule = toList(rule.category);
    const why = !interceptionOn
      ? 'interception is off (settings.interception.enabled)'
      : categoriesOfRule !== undefined && categoriesOfRule.every((name) => neverInspected.has(name))
        ? 'its categories are never inspected (settings.interception.doNotInspect)'
        : undefined;
    if (why !== undefined) problems.warn(located.src.at([...located.path, 'id']), `rule "${rule.id}" needs the method or path but ${why}: it matches plain HTTP only`);
  }

  let compiledDefault: CompiledDefault = DEFAULT_DEFAULT;
  if (rawDefault !== undefined) {
    const { value, src, path } = rawDefault;
    if (catchAll !== undefined) problems.warn(src.at(path, true), `default is never used: rule "${catchAll.value.id}" matches every request`);
    compiledDefault = Object.freeze({
      description: value.description ?? DEFAULT_DEFAULT.description,
      actionKind: value.action,
      action: buildAction(value, value.action, src, path, problems),
    });
  }

  if (problems.errors.length > 0) return undefined;
  const categoryNames = [...categories.keys()];
  return new PolicyImpl({
    settings: finalSettings,
    files: sources.map(({ src }) => src.file),
    hash: hash.digest('hex').slice(0, 16),
    stats: { files: sources.length, categories: categories.size, domains: classifier.domainCount, rules: compiledRules.length },
    categoryNames,
    siteNames: [...sites.keys()],
    groupNames: [...groups.keys()],
    categoryKinds,
    rules: Object.freeze(compiledRules),
    default: compiledDefault,
    classifier,
    userGroups,
    networkGroups: new NetworkSet(networkEntries),
  });
}

const ALLOW_ACTION: EffectiveAction = Object.freeze({ kind: 'allow' });
const DEFAULT_DEFAULT: CompiledDefault = Object.freeze({ description: 'No rule matched: allowed.', actionKind: 'allow', action: ALLOW_ACTION });
const DEFAULT_CONTINUE_MINUTES = 15;

function buildAction(options: RawActionOptions & { id?: string }, kind: EffectiveAction['kind'], src: YamlSource, path: YamlPath, problems: Problems): EffectiveAction {
  const who = options.id === undefined ? 'default' : `rule "${options.id}"`;
  switch (kind) {
    case 'allow':
      return ALLOW_ACTION;
    case 'readonly':
      return Object.freeze({ kind: 'readonly' });
    case 'block':
      if (options.reason === undefined) problems.error(src.at([...path, 'action']), `${who}: a block needs a reason (shown on the block page)`);
      return Object.freeze({ kind: 'block', reason: options.reason ?? '' });
    case 'coach':
      return Object.freeze({ kind: 'coach', continueMinutes: options.continueMinutes ?? DEFAULT_CONTINUE_MINUTES, purposeQuestion: options.purposeQuestion ?? false });
    case 'suggest':
      if (options.alternative === undefined) problems.error(src.at([...path, 'action']), `${who}: suggest needs an alternative (name and url of the internal tool)`);
      return Object.freeze({
        kind: 'suggest',
        alternative: Object.freeze({ name: options.alternative?.name ?? '', url: options.alternative?.url ?? '' }),
        continueMinutes: options.continueMinutes ?? DEFAULT_CONTINUE_MINUTES,
        purposeQuestion: options.purposeQuestion ?? false,
      });
  }
}

const CONDITIONS = ['category', 'site', 'host', 'group', 'schedule', 'method', 'path'] as const;

/**
 * True when `earlier` matches every request `later` matches, so `later` is dead: each condition of
 * `earlier` is also on `later` with a subset of its values. Quotas are left out (a quota does not
 * match a host without a category or site to count), so are patterns that differ.
 */
function shadows(earlier: RawRule, later: RawRule): boolean {
  if (earlier.action === 'quota') return false;
  for (const key of CONDITIONS) {
    const wide = toList(earlier[key]);
    if (wide === undefined) continue;
    const narrow = toList(later[key]);
    if (narrow === undefined) return false;
    if (key === 'host') {
      const index = new DomainIndex<true>();
      for (const host of wide) index.add(host, true);
      if (!narrow.every((host) => index.lookup(normalizeHost(host)) !== undefined)) return false;
    } else if (!narrow.every((value) => wide.includes(value))) {
      return false;
    }
  }
  return true;
}

function checkNetwork(text: string, src: YamlSource, path: YamlPath, problems: Problems): boolean {
  try {
    parseNetwork(text);
    return true;
  } catch (error) {
    problems.error(src.at(path), error instanceof LeewayError ? error.message : `invalid network "${text}"`);
    return false;
  }
}

/** `*` matches any run of characters (slashes included); the pattern covers the whole path. */
export function globsToRegExp(patterns: readonly string[]): RegExp {
  const alternatives = patterns.map((pattern) => pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*'));
  return new RegExp(`^(?:${alternatives.join('|')})$`);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

export { formatPath };
