import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SETTLE_DELAY_MS, createAccounting } from '../../src/accounting/accounting.js';
import { UsageLedger } from '../../src/accounting/usage-ledger.js';
import type { Pseudonym } from '../../src/identity/pseudonym.js';
import { createAccessLog } from '../../src/log/access-log.js';
import { createLogger } from '../../src/log/logger.js';
import { LeewayMetrics } from '../../src/metrics/metrics.js';
import { decide } from '../../src/policy/index.js';
import type { CompiledPolicy } from '../../src/policy/index.js';
import type { RequestRecord, TunnelActivity } from '../../src/proxy/account.js';
import { loadFixturePolicy } from '../helpers/policy.js';

/** Each record accounted as it is reported: these tests look at what one record does (the batching is tested on its own). */
const settleAtOnce = (run: () => void): void => run();

let policy: CompiledPolicy;
beforeAll(async () => {
  policy = await loadFixturePolicy('accounting-policy');
});

// Monday 2026-06-15, 10:00 in Paris.
const T0 = Date.parse('2026-06-15T08:00:00Z');
const P1 = 'pseudo-one' as Pseudonym;

function setup(now: () => number = () => T0, schedule: ((run: () => void) => void) | 'default' = settleAtOnce) {
  const ledger = new UsageLedger({ timeZone: policy.settings.timeZone, categoryKind: (c) => policy.categoryKinds[c] ?? 'other' });
  const metrics = new LeewayMetrics({ policy: () => policy, ledger, defaultMetrics: false, clock: now });
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });
  const accessLog = createAccessLog({ mode: () => 'anonymous', logger });
  const accounting = createAccounting({ policy: () => policy, ledger, metrics, accessLog, logger, clock: now, ...(schedule === 'default' ? {} : { schedule }) });
  return { ledger, metrics, accounting, lines };
}

/** Series value from the exposition text, 0 when absent. */
async function value(metrics: LeewayMetrics, series: string): Promise<number> {
  const text = await metrics.metrics();
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return 0;
}

function request(overrides: Partial<RequestRecord> = {}): RequestRecord {
  return {
    at: T0, kind: 'http', pseudonym: P1, group: 'sales', category: 'social-leisure', site: 'facebook',
    ruleId: 'social-budget', action: 'allow', status: 200, bytesIn: 10, bytesOut: 1000, durationMs: 12, ...overrides,
  };
}

function tunnel(overrides: Partial<TunnelActivity> = {}): TunnelActivity {
  return {
    at: T0, kind: 'tunnel', pseudonym: P1, group: 'sales', category: 'social-leisure', site: 'facebook',
    direction: 'client-to-origin', bytes: 500, ...overrides,
  };
}

describe('records wait to be accounted together', () => {
  const leisure = { kind: 'category', name: 'social-leisure' } as const;

  it('accounts the requests reported within SETTLE_DELAY_MS together, once it has passed (the default)', async () => {
    const { accounting, ledger, lines } = setup(() => T0, 'default');
    for (let i = 0; i < 3; i += 1) accounting.requestDone(request({ bytesOut: i }));
    // Not at the end of the turn: the batch gathers a few milliseconds' records.
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toHaveLength(0);
    expect(ledger.minutesUsedToday(P1, leisure)).toBe(0);
    accounting.requestDone(request({ bytesOut: 3 }));
    await new Promise((resolve) => setTimeout(resolve, SETTLE_DELAY_MS + 20));
    expect(lines.map((line) => line.bytesOut)).toEqual([0, 1, 2, 3]);
    expect(ledger.minutesUsedToday(P1, leisure)).toBe(1);
  });

  it('schedules one batch at a time, not one per request, even when readers settle in between', () => {
    const runs: (() => void)[] = [];
    const { accounting, lines } = setup(() => T0, (run) => void runs.push(run));
    for (let i = 0; i < 5; i += 1) accounting.requestDone(request());
    expect(runs).toHaveLength(1);
    // A quota rule asks for usage on every request: that settles, and must not schedule again.
    accounting.usage(P1);
    expect(lines).toHaveLength(5);
    accounting.requestDone(request());
    expect(runs).toHaveLength(1);
    runs[0]?.();
    expect(lines).toHaveLength(6);
    accounting.requestDone(request());
    expect(runs).toHaveLength(2);
  });

  it('counts each record of a batch under its own labels, however they alternate', async () => {
    const runs: (() => void)[] = [];
    const { accounting, metrics, lines } = setup(() => T0, (run) => void runs.push(run));
    // Runs of one combination, then changes in one label at a time, and back.
    const order: Partial<RequestRecord>[] = [
      {}, {}, { action: 'coach' }, {}, { site: 'youtube' }, { site: 'youtube' }, { category: 'business-networking', site: 'linkedin' },
      {}, { category: undefined, site: undefined }, { site: 'youtube', action: 'coach' }, {},
    ];
    order.forEach((overrides, i) => accounting.requestDone(request({ ...overrides, bytesOut: i })));
    expect(runs).toHaveLength(1);
    runs[0]?.();
    const count = (category: string, site: string, action: string): Promise<number> =>
      value(metrics, `leeway_requests_total{category="${category}",site="${site}",action="${action}"}`);
    expect(await count('social-leisure', 'facebook', 'allow')).toBe(5);
    expect(await count('social-leisure', 'facebook', 'coach')).toBe(1);
    expect(await count('social-leisure', 'youtube', 'allow')).toBe(2);
    expect(await count('social-leisure', 'youtube', 'coach')).toBe(1);
    expect(await count('business-networking', 'linkedin', 'allow')).toBe(1);
    expect(await count('other', 'other', 'allow')).toBe(1);
    const access = lines.filter((line) => line.msg === 'access');
    const facebook = 'social-leisure/facebook/allow';
    expect(access.map((line) => `${String(line.category)}/${String(line.site)}/${String(line.action)}`)).toEqual([
      facebook, facebook, 'social-leisure/facebook/coach', facebook, 'social-leisure/youtube/allow', 'social-leisure/youtube/allow',
      'business-networking/linkedin/allow', facebook, 'other/other/allow', 'social-leisure/youtube/coach', facebook,
    ]);
    expect(access.map((line) => line.bytesOut)).toEqual(order.map((_, i) => i));
  });

  it('accounts at once when records pile up beyond a bound, whatever the schedule', () => {
    const never = (): void => undefined;
    const { accounting, lines } = setup(() => T0, never);
    for (let i = 0; i < 4_095; i += 1) accounting.requestDone(request());
    expect(lines).toHaveLength(0);
    accounting.requestDone(request());
    expect(lines).toHaveLength(4_096);
  });

  it('lets quotas, tunnel activity, pages and settle() see the requests reported before them', () => {
    const never = (): void => undefined;
    const { accounting, ledger, lines } = setup(() => T0, never);
    accounting.requestDone(request());
    expect(accounting.usage(P1).minutesUsedToday(leisure)).toBe(1);
    accounting.requestDone(request({ at: T0 + 60_000, durationMs: 0 }));
    accounting.tunnelBytes(tunnel({ at: T0 + 120_000 }));
    expect(ledger.minutesUsedToday(P1, leisure)).toBe(3);
    accounting.requestDone(request({ at: T0 + 180_000, durationMs: 0 }));
    accounting.pageEvent({ at: T0 + 180_000, pseudonym: P1, group: 'sales', category: 'social-leisure', site: 'facebook', ruleId: 'social-budget', page: 'coach', outcome: 'shown' });
    expect(ledger.minutesUsedToday(P1, leisure)).toBe(4);
    accounting.requestDone(request({ at: T0 + 240_000, durationMs: 0 }));
    accounting.settle();
    expect(ledger.minutesUsedToday(P1, leisure)).toBe(5);
    expect(lines.filter((line) => line.msg === 'access')).toHaveLength(4);
  });
});

describe('records still waiting when the process exits', () => {
  it('are accounted and their access lines written, as leeway start writes them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'leeway-settle-exit-'));
    try {
      const file = join(dir, 'access.log');
      const src = (path: string): string => new URL(`../../src/${path}`, import.meta.url).pathname;
      const script = `
        import { openSync } from 'node:fs';
        import { createUsageAccounting } from '${src('accounting/leeway-accounting.ts')}';
        import { FdDestination } from '${src('log/fd-destination.ts')}';
        import { loadFixturePolicy } from '${new URL('../helpers/policy.ts', import.meta.url).pathname}';
        const policy = await loadFixturePolicy('accounting-policy');
        const usage = createUsageAccounting({ defaultMetrics: false, accessLogDestination: new FdDestination(openSync(process.argv[1], 'w')) });
        usage.attach({ policy, admin: { register: () => undefined } });
        for (let i = 0; i < 300; i += 1) {
          usage.accounting.requestDone({ at: Date.now(), kind: 'http', pseudonym: 'p', group: 'sales', category: 'social-leisure', site: 'facebook', ruleId: 'social-budget', action: 'allow', status: 200, bytesIn: i, bytesOut: 0, durationMs: 1 });
        }
        // In the same turn: nothing has been accounted yet.
        process.exit(0);
      `;
      execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, file], { stdio: ['ignore', 'ignore', 'inherit'] });
      const lines = readFileSync(file, 'utf8').split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as { bytesIn: number });
      expect(lines.map((line) => line.bytesIn)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tunnel activity', () => {
  const cases: { name: string; reports: Partial<TunnelActivity>[]; minutes: number }[] = [
    { name: 'client-to-origin bytes count a minute', reports: [{}], minutes: 1 },
    { name: 'origin-to-client bytes alone never count (background keep-alive)', reports: [{ direction: 'origin-to-client' }, { direction: 'origin-to-client', at: T0 + 120_000 }], minutes: 0 },
    { name: 'zero client bytes do not count', reports: [{ bytes: 0 }], minutes: 0 },
    { name: 'a long tunnel counts each minute the person sent something', reports: [{}, { at: T0 + 30_000 }, { at: T0 + 60_000 }, { at: T0 + 180_000, direction: 'origin-to-client' }, { at: T0 + 240_000 }], minutes: 3 },
    { name: 'a WebSocket counts like a tunnel', reports: [{ kind: 'websocket' }, { kind: 'websocket', at: T0 + 60_000 }], minutes: 2 },
  ];
  it.each(cases)('$name', async ({ reports, minutes }) => {
    const { accounting, metrics } = setup();
    for (const report of reports) accounting.tunnelBytes(tunnel(report));
    expect(accounting.usage(P1).minutesUsedToday({ kind: 'site', name: 'facebook' })).toBe(minutes);
    expect(await value(metrics, 'leeway_active_minutes_total{category="social-leisure",site="facebook",group="other"}')).toBe(minutes);
  });

  it('counts tunnel bytes by direction, and not a second time from the tunnel record', async () => {
    const { accounting, metrics } = setup();
    accounting.tunnelBytes(tunnel({ bytes: 300 }));
    accounting.tunnelBytes(tunnel({ bytes: 7000, direction: 'origin-to-client' }));
    accounting.requestDone(request({ kind: 'tunnel', bytesIn: 300, bytesOut: 7000 }));
    expect(await value(metrics, 'leeway_bytes_total{category="social-leisure",direction="client-to-origin"}')).toBe(300);
    expect(await value(metrics, 'leeway_bytes_total{category="social-leisure",direction="origin-to-client"}')).toBe(7000);
  });
});

describe('requests', () => {
  const cases: { action: RequestRecord['action']; minutes: number }[] = [
    { action: 'allow', minutes: 1 },
    { action: 'readonly', minutes: 1 },
    { action: 'coach', minutes: 0 },
    { action: 'suggest', minutes: 0 },
    { action: 'block', minutes: 0 },
    { action: 'refused', minutes: 0 },
    { action: 'error', minutes: 0 },
  ];
  it.each(cases)('$action: counted as a request, $minutes active minute(s)', async ({ action, minutes }) => {
    const { accounting, metrics } = setup();
    accounting.requestDone(request({ action }));
    expect(await value(metrics, `leeway_requests_total{category="social-leisure",site="facebook",action="${action}"}`)).toBe(1);
    expect(accounting.usage(P1).minutesUsedToday({ kind: 'category', name: 'social-leisure' })).toBe(minutes);
    expect(await value(metrics, 'leeway_browsing_minutes_total{group="other"}')).toBe(minutes);
  });

  it('feeds bytes and the duration histogram for HTTP', async () => {
    const { accounting, metrics } = setup();
    accounting.requestDone(request({ kind: 'https', durationMs: 30 }));
    expect(await value(metrics, 'leeway_bytes_total{category="social-leisure",direction="origin-to-client"}')).toBe(1000);
    expect(await value(metrics, 'leeway_http_request_duration_seconds_count{kind="https"}')).toBe(1);
    expect(await value(metrics, 'leeway_http_request_duration_seconds_bucket{le="0.025",kind="https"}')).toBe(0);
    expect(await value(metrics, 'leeway_http_request_duration_seconds_bucket{le="0.05",kind="https"}')).toBe(1);
  });

  it('counts a tunnel at the minute it was opened, not the minute it closed', () => {
    const { accounting } = setup();
    // Opened at T0, closed 10 minutes later with only origin pushes in between.
    accounting.requestDone(request({ kind: 'tunnel', at: T0 + 600_000, durationMs: 600_000 }));
    expect(accounting.usage(P1).minutesUsedToday({ kind: 'site', name: 'facebook' })).toBe(1);
    accounting.requestDone(request({ kind: 'http', at: T0 + 30_000, durationMs: 100 }));
    expect(accounting.usage(P1).minutesUsedToday({ kind: 'site', name: 'facebook' })).toBe(1);
  });

  it('counts origin failures by code, and nothing else as one', async () => {
    const { accounting, metrics } = setup();
    accounting.requestDone(request({ action: 'error', status: 504, errorCode: 'LEEWAY_ERR_UPSTREAM_TIMEOUT' }));
    accounting.requestDone(request({ action: 'error', status: 403, errorCode: 'LEEWAY_ERR_EGRESS_FORBIDDEN' }));
    expect(await value(metrics, 'leeway_upstream_errors_total{code="LEEWAY_ERR_UPSTREAM_TIMEOUT"}')).toBe(1);
    expect(await value(metrics, 'leeway_upstream_errors_total{code="LEEWAY_ERR_EGRESS_FORBIDDEN"}')).toBe(0);
  });

  it('folds labels under the policy in force: a reload re-folds new requests, earlier counts keep theirs', async () => {
    let live = policy;
    const ledger = new UsageLedger({ timeZone: policy.settings.timeZone });
    const metrics = new LeewayMetrics({ policy: () => live, ledger, defaultMetrics: false, clock: () => T0 });
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({ destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });
    const accessLog = createAccessLog({ mode: () => 'anonymous', logger });
    const accounting = createAccounting({ policy: () => live, ledger, metrics, accessLog, logger, clock: () => T0, schedule: settleAtOnce });
    accounting.requestDone(request());
    accounting.requestDone(request());
    // The reloaded policy no longer names the site facebook.
    live = { ...policy, siteNames: policy.siteNames.filter((name) => name !== 'facebook') };
    accounting.requestDone(request({ bytesOut: 5 }));
    expect(await value(metrics, 'leeway_requests_total{category="social-leisure",site="facebook",action="allow"}')).toBe(2);
    expect(await value(metrics, 'leeway_requests_total{category="social-leisure",site="other",action="allow"}')).toBe(1);
    expect(await value(metrics, 'leeway_bytes_total{category="social-leisure",direction="origin-to-client"}')).toBe(2005);
    expect(lines.filter((line) => line.msg === 'access').map((line) => line.site)).toEqual(['facebook', 'facebook', 'other']);
  });

  it('never lets a fault reach the proxy', () => {
    const { accounting, lines } = setup();
    const broken = request({ at: Number.NaN });
    expect(() => accounting.requestDone(broken)).not.toThrow();
    expect(lines.filter((line) => line.stage === 'account')).toHaveLength(1);
  });
});

describe('quota exhaustion through decide()', () => {
  it('allows while minutes are left, then applies the used-up action, counted once per person and day', async () => {
    let now = T0;
    const { accounting, metrics } = setup(() => now);
    const actions: string[] = [];
    // One request per minute for 6 minutes; the fixture's budget is 3 minutes then coach.
    for (let minute = 0; minute < 6; minute += 1) {
      now = T0 + minute * 60_000;
      const decision = decide({ host: 'www.facebook.test', group: 'sales' }, policy, now, accounting.usage(P1));
      actions.push(decision.action.kind);
      accounting.requestDone(request({ at: now, action: decision.action.kind === 'coach' ? 'coach' : 'allow', quota: decision.quota }));
    }
    expect(actions).toEqual(['allow', 'allow', 'allow', 'coach', 'coach', 'coach']);
    expect(await value(metrics, 'leeway_quota_exhausted_total{category="social-leisure"}')).toBe(1);

    // The next local day starts afresh.
    now = Date.parse('2026-06-16T08:00:00Z');
    const decision = decide({ host: 'www.facebook.test', group: 'sales' }, policy, now, accounting.usage(P1));
    expect(decision.action.kind).toBe('allow');
    expect(decision.quota?.minutesUsed).toBe(0);
  });
});

describe('pages and purpose answers', () => {
  it('counts pages by kind and outcome, and purpose answers', async () => {
    const { accounting, metrics, ledger } = setup();
    const base = { at: T0, pseudonym: P1, group: 'sales', category: 'social-leisure', site: 'facebook', ruleId: 'social-budget' } as const;
    accounting.pageEvent({ ...base, page: 'coach', outcome: 'shown' });
    accounting.pageEvent({ ...base, page: 'coach', outcome: 'continued', purpose: 'break' });
    accounting.pageEvent({ ...base, page: 'coach', outcome: 'continued', purpose: 'unsaid' });
    accounting.pageEvent({ ...base, page: 'suggest', outcome: 'alternative' });
    expect(await value(metrics, 'leeway_pages_total{page="coach",category="social-leisure",outcome="shown"}')).toBe(1);
    expect(await value(metrics, 'leeway_pages_total{page="coach",category="social-leisure",outcome="continued"}')).toBe(2);
    expect(await value(metrics, 'leeway_pages_total{page="suggest",category="social-leisure",outcome="alternative"}')).toBe(1);
    expect(await value(metrics, 'leeway_purpose_answers_total{category="social-leisure",purpose="break"}')).toBe(1);
    expect(await value(metrics, 'leeway_purpose_answers_total{category="social-leisure",purpose="unsaid"}')).toBe(1);
    const summary = ledger.todaySummary(T0);
    expect(summary.pages.coach).toEqual({ shown: 1, continued: 2, alternative: 0 });
    expect(summary.purposeAnswers).toEqual({ business: 0, break: 1, unsaid: 1 });
  });
});
