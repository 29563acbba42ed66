/** `leeway check`, `explain` and `test` through the CLI dispatcher, output captured. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli.js';

async function runCli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void out.push(args.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void err.push(args.join(' ')));
  try {
    const code = await main(argv);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('leeway check', () => {
  it('passes the bundled policies with a one-line summary', async () => {
    const { code, out } = await runCli(['check', 'policies']);
    expect(code).toBe(0);
    expect(out).toMatch(/^ok: 4 files, 6 categories, \d+ domains, 8 rules$/);
  });

  it('prints every error and exits 1', async () => {
    const { code, out } = await runCli(['check', 'test/fixtures/invalid-policies/many-mistakes']);
    expect(code).toBe(1);
    expect(out.split('\n')).toEqual([
      'test/fixtures/invalid-policies/many-mistakes/policy.yaml:6:15 rule "one": unknown category "socail"',
      'test/fixtures/invalid-policies/many-mistakes/policy.yaml:11:13 rules[1].action: must be one of allow, coach, suggest, quota, readonly, block',
      'test/fixtures/invalid-policies/many-mistakes/policy.yaml:12:5 rules[1]: unknown key "colour"',
      'test/fixtures/invalid-policies/many-mistakes/policy.yaml:15:15 rule "three": unknown schedule "never"',
      '4 errors',
    ]);
  });

  it('prints warnings but still passes', async () => {
    const { code, out } = await runCli(['check', 'test/fixtures/policies-warnings']);
    expect(code).toBe(0);
    expect(out.split('\n')).toEqual([
      'test/fixtures/policies-warnings/policy.yaml:5:9 rule "bank-transfers" needs the method or path but its categories are never inspected (settings.interception.doNotInspect): it matches plain HTTP only (warning)',
      'ok: 1 files, 2 categories, 2 domains, 1 rules',
    ]);
  });

  it('reports a missing folder', async () => {
    const { code, out } = await runCli(['check', 'test/fixtures/no-such-folder']);
    expect(code).toBe(1);
    expect(out).toContain('no-such-folder:1:1 cannot read policy folder: ENOENT');
  });
});

describe('leeway explain', () => {
  it('allows Facebook at lunch by the lunch rule', async () => {
    const { code, out } = await runCli(['explain', 'https://www.facebook.com/', '--group', 'staff', '--at', '2026-11-26T12:30:00+01:00']);
    expect(code).toBe(0);
    expect(out).toContain('Decision: allow, by rule social-at-lunch: "Social networks are free during the lunch break."');
    expect(out).toMatch(/social-at-lunch\s+MATCH\s+matches: category social-leisure, schedule lunch active on Thu 12:30 \(Europe\/Paris\)/);
  });

  it('says the budget is used up at 10:30 and what comes next', async () => {
    const { code, out } = await runCli(['explain', 'https://www.facebook.com/', '--group', 'staff', '--at', '2026-11-26T10:30:00+01:00', '--minutes-used', '90']);
    expect(code).toBe(0);
    expect(out).toMatch(/social-at-lunch\s+no\s+schedule lunch is not active on Thu 10:30 \(Europe\/Paris\)/);
    expect(out).toContain('by rule social-daily-budget (quota)');
    expect(out).toContain('Next: The daily budget for category social-leisure is used up (90 of 60 minutes). The coach page is shown;');
  });

  it('gives the same as JSON', async () => {
    const { code, out } = await runCli(['explain', 'https://www.facebook.com/', '--group', 'staff', '--at', '2026-11-26T10:30:00+01:00', '--minutes-used', '90', '--json']);
    expect(code).toBe(0);
    const parsed = JSON.parse(out) as { decision: Record<string, unknown>; request: Record<string, unknown>; next: string };
    expect(parsed.request).toMatchObject({ host: 'www.facebook.com', group: 'staff', method: 'GET', path: '/', at: '2026-11-26T09:30:00.000Z', minutesUsed: 90 });
    expect(parsed.decision).toMatchObject({
      action: { kind: 'coach', continueMinutes: 15, purposeQuestion: true },
      ruleAction: 'quota',
      ruleId: 'social-daily-budget',
      quota: { scope: { kind: 'category', name: 'social-leisure' }, minutesPerDay: 60, minutesUsed: 90, minutesLeft: 0, exhausted: true },
    });
    expect(parsed.next).toContain('The coach page is shown');
  });

  it('resolves the group from the client address and explains a tunnel', async () => {
    const { code, out } = await runCli(['explain', 'https://www.facebook.com/', '--client', '10.20.1.2', '--tunnel', '--at', '2026-11-26T12:30:00+01:00', '--json']);
    expect(code).toBe(0);
    const parsed = JSON.parse(out) as { decision: { needsInspection: boolean; ruleId: string }; request: { group: string; method?: string } };
    expect(parsed.request.group).toBe('sales');
    expect(parsed.request.method).toBeUndefined();
    expect(parsed.decision).toMatchObject({ ruleId: 'social-at-lunch', needsInspection: true });
  });

  it.each([
    [['explain'], 'give exactly one URL'],
    [['explain', 'https://x.example/', '--at', 'yesterday'], 'invalid --at "yesterday"'],
    [['explain', 'https://x.example/', '--minutes-used=-3'], 'invalid --minutes-used "-3"'],
    [['explain', 'https://x.example/', '--group', 'nobody'], 'unknown group "nobody" (known: staff, sales)'],
    [['explain', 'not a url'], 'invalid URL "not a url"'],
    [['explain', 'https://x.example/', '--colour'], 'Unknown option'],
  ])('%j is a usage error', async (argv, message) => {
    const { code, err } = await runCli(argv);
    expect(code).toBe(2);
    expect(err).toContain(message);
  });
});

describe('leeway test', () => {
  it('passes the bundled policy tests and covers every rule', async () => {
    const { code, out } = await runCli(['test', 'policies']);
    expect(code).toBe(0);
    expect(out).not.toContain('note: no case ends at rule');
    expect(out).toMatch(/^\d+ passed, 0 failed$/m);
  });

  it('reports mistakes in the case files themselves as file:line:col', async () => {
    const { code, out } = await runCli(['test', 'test/fixtures/policies-bad-cases']);
    expect(code).toBe(1);
    expect(out.split('\n')).toEqual([
      'test/fixtures/policies-bad-cases/smoke.test.yaml:5:23 cases[0].expect.action: must be one of allow, coach, suggest, readonly, block',
      'test/fixtures/policies-bad-cases/smoke.test.yaml:8:9 invalid time "12:30": use ISO 8601 with an offset, e.g. 2026-11-26T12:30:00+01:00',
      'test/fixtures/policies-bad-cases/smoke.test.yaml:12:9 invalid time "2026-11-26T12:30:00": use ISO 8601 with an offset, e.g. 2026-11-26T12:30:00+01:00',
    ]);
  });

  it('prints a failing case with its file:line and exits 1', async () => {
    const { code, out } = await runCli(['test', 'test/fixtures/policies-failing-case']);
    expect(code).toBe(1);
    expect(out).toContain('FAIL  test/fixtures/policies-failing-case/tests/cases.yaml:8 Facebook is blocked (it is not): got action coach, expected block; rule staff-social-coach, expected default');
    expect(out).toContain('1 passed, 1 failed');
  });
});
