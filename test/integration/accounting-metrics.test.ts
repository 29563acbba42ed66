import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { T0, USERS, driveTraffic, removeHarnessDir, startHarness } from './accounting-harness.js';
import type { Harness } from './accounting-harness.js';

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;

/** Parse the scrape; every line must be a HELP/TYPE comment or `name{labels} value`. */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const match = SAMPLE.exec(line);
    if (match === null || Number.isNaN(Number(match[3])) && !/^nan$/i.test(match[3] ?? '')) throw new Error(`not exposition format: ${line}`);
    const labels: Record<string, string> = {};
    const body = match[2] ?? '';
    const rest = body.replace(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g, (_all, key: string, value: string) => {
      labels[key] = value;
      return '';
    });
    if (rest !== '') throw new Error(`bad labels: ${line}`);
    out.push({ name: match[1] ?? '', labels, value: Number(match[3]) });
  }
  return out;
}

function value(samples: readonly Sample[], name: string, labels: Record<string, string>): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found.reduce((sum, s) => sum + s.value, 0);
}

describe('accounting through the real proxy: 30 users, 3 groups', () => {
  let h: Harness;
  let samples: Sample[];
  let scrape: { status: number; contentType: string; body: string };
  let coachPage: { status: number; body: string };

  beforeAll(async () => {
    h = await startHarness('anonymous');
    await driveTraffic(h);
    // One person keeps going: minutes 2 and 3 use up the 3-minute social budget, then coach.
    const keen = USERS[2];
    if (keen === undefined) throw new Error('no user');
    h.setNow(T0 + 2 * 60_000);
    expect((await h.get(keen, `http://www.facebook.test:${h.originPort}/more`)).status).toBe(200);
    h.setNow(T0 + 3 * 60_000);
    coachPage = await h.get(keen, `http://www.facebook.test:${h.originPort}/more`);
    expect(coachPage.status).toBe(403);
    expect((await h.get(keen, `http://www.facebook.test:${h.originPort}/more`)).status).toBe(403);
    // Continue past the page, answering "a break": the next request goes through.
    const token = /name="token" value="([^"]+)"/.exec(coachPage.body)?.[1];
    expect(token).toBeDefined();
    const form = new URLSearchParams({ token: token ?? '', choice: 'continue', purpose: 'break' }).toString();
    expect((await h.post(keen, `http://www.facebook.test:${h.originPort}/.leeway/continue`, form)).status).toBe(303);
    expect((await h.get(keen, `http://www.facebook.test:${h.originPort}/more`)).status).toBe(200);
    scrape = await h.scrape();
    samples = parse(scrape.body);
  });

  afterAll(async () => {
    await h?.close();
    if (h !== undefined) await removeHarnessDir(h);
  });

  it('serves /metrics in the registry content type, and the origin saw every request', () => {
    expect(scrape.status).toBe(200);
    expect(scrape.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(h.originSaw.length).toBe(30 + 30 * 3 + 2);
  });

  it('counts requests per category, site and action', () => {
    expect(value(samples, 'leeway_requests_total', { category: 'social-leisure', site: 'facebook', action: 'allow' })).toBe(62);
    expect(value(samples, 'leeway_requests_total', { category: 'social-leisure', site: 'facebook', action: 'coach' })).toBe(2);
    expect(value(samples, 'leeway_requests_total', { category: 'business-networking', site: 'linkedin', action: 'allow' })).toBe(30);
    // The unnamed host folds into other and never appears by name.
    expect(value(samples, 'leeway_requests_total', { category: 'other', site: 'other', action: 'allow' })).toBe(30);
    expect(scrape.body).not.toContain('unnamed-host');
  });

  it('counts person-minutes: each user 2 browsing minutes, the keen one 4 (coach pages are not time on the site)', () => {
    expect(value(samples, 'leeway_browsing_minutes_total', {})).toBe(30 * 2 + 2);
    // Everyone is in a group and board has 2 people: other must not be board alone, so the
    // smallest named group (lab and sales tie at 14 by the end: lab, the first by name) is
    // other too. Minute 0, one by one: sales from its 5th person is other while board alone
    // would be (lab not yet 5), and lab from its 5th is other beside board; so all of minute 0 is
    // other. Minute 1: sales by name, lab and board other; the keen one adds 2 to sales.
    expect(value(samples, 'leeway_browsing_minutes_total', { group: 'sales' })).toBe(14 + 2);
    expect(value(samples, 'leeway_browsing_minutes_total', { group: 'lab' })).toBe(0);
    expect(value(samples, 'leeway_browsing_minutes_total', { group: 'other' })).toBe(30 + 14 + 2);
    expect(value(samples, 'leeway_active_minutes_total', { category: 'social-leisure', site: 'facebook' })).toBe(30 * 2 + 2);
    expect(value(samples, 'leeway_active_minutes_total', { category: 'business-networking', site: 'linkedin' })).toBe(30);
    expect(value(samples, 'leeway_active_minutes_total', { category: 'business-networking', site: 'linkedin', group: 'sales' })).toBe(14);
  });

  it('reports distinct people and the distribution of daily minutes', () => {
    expect(value(samples, 'leeway_people_active', { category: 'social-leisure', group: 'sales' })).toBe(14);
    expect(value(samples, 'leeway_people_active', { category: 'social-leisure', group: 'lab' })).toBe(0);
    expect(value(samples, 'leeway_people_active', { category: 'social-leisure', group: 'other' })).toBe(14 + 2);
    expect(value(samples, 'leeway_daily_minutes_people', { category: 'social-leisure', band: '0-15' })).toBe(30);
    expect(value(samples, 'leeway_daily_minutes_people', { category: 'social-leisure', band: '15-30' })).toBe(0);
  });

  it('shows the minutes used and left on the coach page, from the ledger', () => {
    expect(coachPage.body).toContain('<meter min="0" max="3" value="3"');
  });

  it('counts the coach page, the Continue with its purpose, and the quota used up once', () => {
    expect(value(samples, 'leeway_pages_total', { page: 'coach', category: 'social-leisure', outcome: 'shown' })).toBe(2);
    expect(value(samples, 'leeway_pages_total', { page: 'coach', category: 'social-leisure', outcome: 'continued' })).toBe(1);
    expect(value(samples, 'leeway_purpose_answers_total', { category: 'social-leisure', purpose: 'break' })).toBe(1);
    expect(value(samples, 'leeway_quota_exhausted_total', { category: 'social-leisure' })).toBe(1);
  });

  it('counts body bytes', () => {
    expect(value(samples, 'leeway_bytes_total', { category: 'social-leisure', direction: 'origin-to-client' })).toBe(62 * 1024);
  });

  it('never names the 2-person group, nor lets other be that group alone', () => {
    const groups = new Set(samples.flatMap((s) => (s.labels.group === undefined ? [] : [s.labels.group])));
    expect([...groups].sort()).toEqual(['other', 'sales']);
    expect(scrape.body).not.toContain('board');
    expect(value(samples, 'leeway_people_browsing', { group: 'other' })).toBeGreaterThanOrEqual(5);
  });

  it('reports the policy and process metrics', () => {
    expect(value(samples, 'leeway_policy_info', { hash: h.leeway.policy.hash })).toBe(1);
    expect(samples.some((s) => s.name === 'process_resident_memory_bytes')).toBe(true);
  });
});
