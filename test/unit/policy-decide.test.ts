/** decide(): first-match order, the default, groups, quotas, needsInspection; and load-time settings. */
import { dirname, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { decide, readsUsage } from '../../src/policy/decide.js';
import { loadPolicy } from '../../src/policy/load.js';
import { NO_USAGE } from '../../src/policy/types.js';
import type { CompiledPolicy, RequestFacts, UsageView } from '../../src/policy/types.js';

const DIR = 'test/fixtures/policies-engine';
let policy: CompiledPolicy;

beforeAll(async () => {
  const loaded = await loadPolicy(DIR);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  policy = loaded.policy;
});

const THURSDAY_NOON = Date.parse('2026-11-26T12:30:00+01:00');
const used = (minutes: number): UsageView => ({ minutesUsedToday: () => minutes });

describe('decide: first match wins, then the default', () => {
  it.each<[string, RequestFacts, number, string, string]>([
    ['staff on social: the earlier coach rule wins over the quota', { host: 'www.facebook.com', group: 'staff', method: 'GET', path: '/' }, THURSDAY_NOON, 'staff-social-coach', 'coach'],
    ['sales on social: quota with minutes left', { host: 'www.facebook.com', group: 'sales', method: 'GET', path: '/' }, THURSDAY_NOON, 'social-quota', 'allow'],
    ['POST to a group: suggest comes first', { host: 'www.facebook.com', group: 'staff', method: 'POST', path: '/groups/cats/posts' }, THURSDAY_NOON, 'posts-suggest', 'suggest'],
    ['PUT to a group: suggest too', { host: 'facebook.com', method: 'PUT', path: '/groups/x' }, THURSDAY_NOON, 'posts-suggest', 'suggest'],
    ['POST elsewhere: not the group rule', { host: 'www.facebook.com', group: 'staff', method: 'POST', path: '/messages' }, THURSDAY_NOON, 'staff-social-coach', 'coach'],
    ['path pattern is anchored', { host: 'www.facebook.com', group: 'staff', method: 'POST', path: '/x/groups/y' }, THURSDAY_NOON, 'staff-social-coach', 'coach'],
    ['Friday night news is read-only', { host: 'news.example', method: 'GET', path: '/' }, Date.parse('2026-11-27T23:30:00+01:00'), 'news-friday-night', 'readonly'],
    ['Tokyo lunch in a schedule zone of its own', { host: 'news.example', method: 'GET', path: '/' }, Date.parse('2026-11-26T12:30:00+09:00'), 'news-tokyo-lunch', 'coach'],
    ['IP literal in a category', { host: '10.1.2.3', method: 'GET', path: '/' }, THURSDAY_NOON, 'lan-block', 'block'],
    ['IPv6 literal in brackets with a port', { host: '[2001:db8::1]:8443' }, THURSDAY_NOON, 'lan-block', 'block'],
    ['host rule by suffix', { host: 'www.news.example', method: 'GET', path: '/' }, THURSDAY_NOON, 'news-site-quota', 'allow'],
    ['nothing matches: the default', { host: 'unknown.example', method: 'GET', path: '/' }, THURSDAY_NOON, 'default', 'coach'],
    ['upper case and trailing dot still classify', { host: 'WWW.FACEBOOK.COM.', group: 'staff', method: 'GET', path: '/' }, THURSDAY_NOON, 'staff-social-coach', 'coach'],
  ])('%s', (_name, facts, now, ruleId, action) => {
    const decision = decide(facts, policy, now, NO_USAGE);
    expect(decision.ruleId).toBe(ruleId);
    expect(decision.action.kind).toBe(action);
  });

  it('gives the default its description and coach parameters', () => {
    const decision = decide({ host: 'unknown.example', method: 'GET', path: '/' }, policy, THURSDAY_NOON, NO_USAGE);
    expect(decision).toMatchObject({ ruleAction: 'coach', description: 'Default is coach.', category: undefined, site: undefined, quota: undefined, trace: [] });
    expect(decision.action).toEqual({ kind: 'coach', continueMinutes: 15, purposeQuestion: false });
  });

  it('traces every earlier rule with fullTrace, and only the match without', () => {
    const facts: RequestFacts = { host: 'www.facebook.com', group: 'sales', method: 'GET', path: '/' };
    const full = decide(facts, policy, THURSDAY_NOON, NO_USAGE, { fullTrace: true });
    expect(full.trace.map((t) => [t.ruleId, t.matched])).toEqual([
      ['posts-suggest', false],
      ['staff-social-coach', false],
      ['social-quota', true],
    ]);
    expect(full.trace[0]?.reason).toBe('method GET is not any of POST, PUT');
    expect(full.trace[1]?.reason).toBe('group sales is not staff');
    const fast = decide(facts, policy, THURSDAY_NOON, NO_USAGE);
    expect(fast.trace.map((t) => t.ruleId)).toEqual(['social-quota']);
  });
});

describe('decide: quotas', () => {
  const facts: RequestFacts = { host: 'www.facebook.com', group: 'sales', method: 'GET', path: '/' };
  it.each([
    [0, 'allow', 30, false],
    [29, 'allow', 1, false],
    [30, 'block', 0, true],
    [90, 'block', 0, true],
  ])('%i minutes used → %s', (minutes, action, left, exhausted) => {
    const decision = decide(facts, policy, THURSDAY_NOON, used(minutes));
    expect(decision.ruleAction).toBe('quota');
    expect(decision.action.kind).toBe(action);
    expect(decision.quota).toEqual({ scope: { kind: 'category', name: 'social' }, minutesPerDay: 30, minutesUsed: minutes, minutesLeft: left, exhausted });
  });

  it('asks usage for the matched category or site', () => {
    const asked: string[] = [];
    const usage: UsageView = { minutesUsedToday: (scope) => (asked.push(`${scope.kind}:${scope.name}`), 10) };
    const decision = decide({ host: 'news.example', method: 'GET', path: '/' }, policy, THURSDAY_NOON, usage);
    expect(asked).toEqual(['site:news-site']);
    expect(decision.action).toEqual({ kind: 'suggest', alternative: { name: 'Digest', url: 'https://intranet.example/digest' }, continueMinutes: 15, purposeQuestion: false });
  });

  it('block reason is carried on the used-up action', () => {
    expect(decide(facts, policy, THURSDAY_NOON, used(31)).action).toEqual({ kind: 'block', reason: 'Budget used up.' });
  });
});

describe('decide: needsInspection', () => {
  it.each<[string, RequestFacts, number, boolean, string]>([
    ['a tunnel to facebook skips the method/path rule', { host: 'www.facebook.com', group: 'staff' }, THURSDAY_NOON, true, 'staff-social-coach'],
    ['a known method and path need nothing more', { host: 'www.facebook.com', group: 'staff', method: 'GET', path: '/' }, THURSDAY_NOON, false, 'staff-social-coach'],
    ['readonly is enforced per request', { host: 'news.example' }, Date.parse('2026-11-27T23:30:00+01:00'), true, 'news-friday-night'],
    ['a host with no such rule does not', { host: 'unknown.example' }, THURSDAY_NOON, false, 'default'],
  ])('%s', (_name, facts, now, needsInspection, ruleId) => {
    const decision = decide(facts, policy, now, NO_USAGE);
    expect(decision.needsInspection).toBe(needsInspection);
    expect(decision.ruleId).toBe(ruleId);
  });

  it('records the skipped rule in the trace', () => {
    const decision = decide({ host: 'www.facebook.com', group: 'staff' }, policy, THURSDAY_NOON, NO_USAGE);
    expect(decision.trace[0]).toMatchObject({ ruleId: 'posts-suggest', matched: false, needsInspection: true });
  });
});

describe('groupFor: user names win, then the most specific network', () => {
  it.each<[{ user?: string; clientIp?: string }, string | undefined]>([
    [{ user: 'alice' }, 'sales'], // listed in sales and interns: the first group wins
    [{ user: 'bob' }, 'interns'],
    [{ user: 'alice', clientIp: '10.1.1.1' }, 'sales'],
    [{ user: 'carol', clientIp: '10.1.1.1' }, 'staff'],
    [{ clientIp: '10.20.1.1' }, 'sales'],
    [{ clientIp: '10.20.30.4' }, 'interns'],
    [{ clientIp: '::ffff:10.20.30.4' }, 'interns'],
    [{ clientIp: 'fd00::1' }, 'staff'],
    [{ clientIp: 'fd00:20::1' }, 'sales'],
    [{ clientIp: '192.168.1.1' }, undefined],
    [{ clientIp: '2001:db8::1' }, undefined],
    [{}, undefined],
  ])('%j → %s', (who, group) => {
    expect(policy.groupFor(who)).toBe(group);
  });
});

describe('compiled policy', () => {
  it('resolves file paths against the policy file and fills the defaults', () => {
    const base = resolve(DIR);
    expect(policy.settings.proxy.auth).toEqual({ htpasswd: resolve(base, 'secrets/htpasswd'), required: true, realm: 'Leeway' });
    expect(policy.settings.tls).toEqual({ caCert: resolve(dirname(base), 'certs/ca.pem'), caKey: resolve(dirname(base), 'certs/ca.key'), extraCaBundle: undefined, certCacheSize: 1000 });
    expect(policy.settings).toMatchObject({
      timeZone: 'Europe/Paris',
      anonymity: { minGroupSize: 5 },
      interception: { enabled: true, doNotInspect: ['finance', 'health'] },
      accessLog: 'anonymous',
      proxy: {
        clients: ['127.0.0.0/8', '::1/128'],
        connectPorts: [443],
        trustedHeader: undefined,
        egress: { allow: ['0.0.0.0/0', '::/0'], deny: [] },
        hosts: {},
        pacBypass: ['localhost', '127.0.0.1', '::1'],
        timeouts: { headersMs: 30000, idleMs: 120000, upstreamMs: 30000, drainMs: 10000 },
      },
    });
    expect(Object.isFrozen(policy.settings.proxy.timeouts)).toBe(true);
  });

  it('names its parts for metrics and pages', () => {
    expect(policy.stats).toEqual({ files: 2, categories: 5, domains: 11, rules: 8 });
    expect(policy.categoryNames).toEqual(['social', 'news', 'lan', 'finance', 'health']);
    expect(policy.categoryKinds).toEqual({ social: 'leisure', news: 'business', lan: 'other', finance: 'other', health: 'other' });
    expect(policy.siteNames).toEqual(['facebook', 'news-site']);
    expect(policy.groupNames).toEqual(['staff', 'sales', 'interns']);
    expect(policy.ruleSummaries[0]).toEqual({ id: 'posts-suggest', description: 'Post on the intranet.', action: 'suggest' });
    expect(policy.hash).toMatch(/^[0-9a-f]{16}$/);
  });

  it('uses the machine time zone when none is set', async () => {
    const loaded = await loadPolicy('test/fixtures/policies-minimal');
    expect(loaded.ok).toBe(true);
    if (!loaded.ok) return;
    expect(loaded.policy.settings.timeZone).toBe(Intl.DateTimeFormat().resolvedOptions().timeZone);
    expect(decide({ host: 'anything.example' }, loaded.policy, 0, NO_USAGE)).toMatchObject({ ruleId: 'default', action: { kind: 'allow' } });
  });
});

describe('readsUsage: whether a usage view can change a decision', () => {
  it('is true with a quota rule and false without one', async () => {
    expect(readsUsage(policy)).toBe(true);
    const loaded = await loadPolicy('test/fixtures/policies-minimal');
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    expect(readsUsage(loaded.policy)).toBe(false);
    // Without a quota rule the view is never read: a view that throws decides as NO_USAGE does.
    const throwing: UsageView = { minutesUsedToday: () => { throw new Error('read'); } };
    const facts: RequestFacts = { host: 'www.facebook.com', method: 'GET', path: '/' };
    expect(decide(facts, loaded.policy, THURSDAY_NOON, throwing)).toEqual(decide(facts, loaded.policy, THURSDAY_NOON, NO_USAGE));
  });
});
