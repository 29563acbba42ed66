/**
 * Issue 6, "done when": a real Prometheus (Debian's /usr/bin/prometheus, on a loopback port,
 * scrape and rule interval 1 s, our recording rules loaded) scrapes a real Leeway started in
 * process, which receives synthetic traffic from people in three groups through the proxy to a
 * local origin. Then every query of every dashboard panel, Grafana variables substituted, is run
 * against Prometheus' HTTP API and must return a non-empty result with a finite value, and every
 * metric a dashboard names must exist in /metrics.
 *
 * Traffic comes in two waves so that counters Prometheus has already seen grow between scrapes:
 * `increase()` and `rate()` are then positive, and the headline ratios are real numbers.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLeeway } from '../../src/index.js';
import type { Leeway } from '../../src/index.js';
import { createUsageAccounting } from '../../src/accounting/leeway-accounting.js';
import type { UsageAccounting } from '../../src/accounting/leeway-accounting.js';
import { DASHBOARDS, DEFAULT_VARIABLE_VALUES, panelQueries, substituteVariables } from '../../grafana/src/dashboards.js';
import { readPromql } from '../../grafana/src/promql.js';
import { startOrigin } from '../helpers/origin.js';
import type { Origin } from '../helpers/origin.js';
import { writeTestPolicy } from '../helpers/policy.js';
import { tokenIn, viaProxy } from '../helpers/via-proxy.js';
import type { TestPolicy } from '../helpers/policy.js';

const ROOT = join(import.meta.dirname, '..', '..');
const PROMETHEUS = '/usr/bin/prometheus';

/** Client addresses per group: the proxy sees each as one person (no auth, identity by address). */
const STAFF = ['127.0.20.1', '127.0.20.2', '127.0.20.3', '127.0.20.4', '127.0.20.5', '127.0.20.6'];
const SALES = ['127.0.10.1', '127.0.10.2', '127.0.10.3', '127.0.10.4', '127.0.10.5', '127.0.10.6'];
/** Two people: below k = 5, so "board" must never reach Prometheus as a label value. */
const BOARD = ['127.0.30.1', '127.0.30.2'];
/**
 * Five people in no group: with them, "other" holds k people without board, so staff and sales
 * stay named (without them, "other" would be board alone and the smallest named group would fold
 * into it, docs/metrics.md).
 */
const UNGROUPED = ['127.0.40.1', '127.0.40.2', '127.0.40.3', '127.0.40.4', '127.0.40.5'];
const PURPOSE_BY_GROUP: Readonly<Record<string, string>> = { staff: 'break', sales: 'business', board: 'unsaid' };

let origin: Origin;
let closedPort: number;
let policy: TestPolicy;
let usage: UsageAccounting;
let leeway: Leeway;
let proxyPort: number;
let adminUrl: string;
let promDir: string;
let prometheus: ChildProcess | undefined;
let promUrl: string;
let promLog = '';

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** What one person does: business networking, a leisure site past its quota, a suggest page, a blocked site, an unreachable one. */
async function browse(from: string, group: string, takeAlternative: boolean): Promise<void> {
  const at = (host: string, path = '/'): string => `http://${host}:${origin.port}${path}`;
  expect((await viaProxy(proxyPort, from, 'GET', at('linkedin.test', '/feed'))).status).toBe(200);
  expect((await viaProxy(proxyPort, from, 'GET', at('plain.test', '/news'))).status).toBe(200);
  // The quota is one minute a day: the first visit is allowed and counted, the next one coached.
  expect((await viaProxy(proxyPort, from, 'GET', at('facebook.test', '/'))).status).toBe(200);
  const coach = await viaProxy(proxyPort, from, 'GET', at('facebook.test', '/watch'));
  expect(coach.status).toBe(403);
  const form = new URLSearchParams({ token: tokenIn(coach.body), choice: 'continue', purpose: PURPOSE_BY_GROUP[group] ?? 'unsaid' }).toString();
  expect((await viaProxy(proxyPort, from, 'POST', at('facebook.test', '/.leeway/continue'), form)).status).toBe(303);
  expect((await viaProxy(proxyPort, from, 'GET', at('facebook.test', '/watch'))).status).toBe(200);
  const suggest = await viaProxy(proxyPort, from, 'GET', at('forum.test', '/groups/1'));
  expect(suggest.status).toBe(403);
  const choice = new URLSearchParams({ token: tokenIn(suggest.body), choice: takeAlternative ? 'alternative' : 'continue' }).toString();
  expect((await viaProxy(proxyPort, from, 'POST', at('forum.test', '/.leeway/continue'), choice)).status).toBe(303);
  expect((await viaProxy(proxyPort, from, 'GET', at('malware.test', '/payload'))).status).toBe(403);
  expect((await viaProxy(proxyPort, from, 'GET', `http://unreachable.test:${closedPort}/`)).status).toBeGreaterThanOrEqual(500);
}

async function promQuery(expr: string): Promise<{ status: string; error?: string; data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> } }> {
  const res = await fetch(`${promUrl}/api/v1/query?${new URLSearchParams({ query: expr })}`);
  return (await res.json()) as Awaited<ReturnType<typeof promQuery>>;
}

async function scalarOf(expr: string): Promise<number | undefined> {
  const answer = await promQuery(expr);
  const first = answer.data?.result[0];
  return first === undefined ? undefined : Number(first.value[1]);
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; prometheus log:\n${promLog.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function scrapeMetrics(): Promise<string> {
  return (await fetch(`${adminUrl}/metrics`)).text();
}

/** Sum of every sample of one metric in exposition text. */
function sumOf(text: string, metric: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${metric}{`) || line.startsWith(`${metric} `)) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** Waits until Prometheus holds the value /metrics shows now, i.e. it has scraped after the traffic. */
async function waitForScrapeOf(metric: string): Promise<void> {
  const expected = sumOf(await scrapeMetrics(), metric);
  await until(`a scrape showing ${metric} = ${expected}`, async () => ((await scalarOf(`sum(${metric})`)) === expected ? true : undefined));
}

beforeAll(async () => {
  origin = await startOrigin();
  closedPort = await freePort();
  const hosts: Record<string, string> = {};
  for (const host of ['linkedin.test', 'facebook.test', 'forum.test', 'malware.test', 'plain.test', 'unreachable.test']) hosts[host] = '127.0.0.1';
  policy = await writeTestPolicy({
    settings: { anonymity: { minGroupSize: 5 }, accessLog: 'aggregate-only' },
    proxy: { hosts },
    categories: {
      'business-networking': { description: 'Professional networks.', kind: 'business', domains: ['linkedin.test'] },
      'social-leisure': { description: 'Social networks for breaks.', kind: 'leisure', domains: ['facebook.test'] },
      community: { description: 'Public forums.', domains: ['forum.test'] },
      malware: { description: 'Malware hosts.', domains: ['malware.test'] },
    },
    sites: { linkedin: ['linkedin.test'], facebook: ['facebook.test'], forum: ['forum.test'] },
    groups: {
      staff: { description: 'Office.', networks: ['127.0.20.0/24'] },
      sales: { description: 'Sales floor.', networks: ['127.0.10.0/24'] },
      board: { description: 'Two people only.', networks: ['127.0.30.0/24'] },
    },
    rules: [
      { id: 'block-malware', description: 'Known malware.', category: 'malware', action: 'block', reason: 'Malware.' },
      { id: 'business', description: 'Business networking is part of the job.', category: 'business-networking', action: 'allow' },
      {
        id: 'forum-internal',
        description: 'Company discussions belong on the intranet.',
        category: 'community',
        action: 'suggest',
        alternative: { name: 'Intranet communities', url: `http://plain.test:${origin.port}/intranet` },
        continueMinutes: 10,
      },
      {
        id: 'social-budget',
        description: 'Social networks share a daily budget.',
        category: 'social-leisure',
        action: 'quota',
        quota: { minutesPerDay: 1, per: 'category', then: 'coach' },
        continueMinutes: 15,
        purposeQuestion: true,
      },
    ],
  });

  usage = createUsageAccounting({ defaultMetrics: true });
  leeway = await createLeeway({ policies: policy.dir, listen: '127.0.0.1:0', admin: '127.0.0.1:0', accounting: usage.accounting });
  usage.attach(leeway);
  const addresses = await leeway.listen();
  proxyPort = addresses.proxy.port;
  const adminPort = addresses.admin?.port ?? 0;
  adminUrl = `http://127.0.0.1:${adminPort}`;

  promDir = await mkdtemp(join(tmpdir(), 'leeway-prometheus-'));
  const promPort = await freePort();
  promUrl = `http://127.0.0.1:${promPort}`;
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'rule_files:',
    `  - ${JSON.stringify(join(ROOT, 'prometheus/rules/leeway.rules.yml'))}`,
    'scrape_configs:',
    '  - job_name: leeway',
    '    static_configs:',
    `      - targets: ['127.0.0.1:${adminPort}']`,
    '',
  ].join('\n');
  await writeFile(join(promDir, 'prometheus.yml'), config);
  prometheus = spawn(
    PROMETHEUS,
    [
      `--config.file=${join(promDir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(promDir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  prometheus.stderr?.setEncoding('utf8');
  prometheus.stderr?.on('data', (text: string) => {
    promLog = (promLog + text).slice(-20_000);
  });
  await until('Prometheus ready', async () => ((await fetch(`${promUrl}/-/ready`)).ok ? true : undefined));

  // Wave 1: five people in no group (one business request each), five staff and five sales
  // people (their groups reach k), one board member.
  for (const from of UNGROUPED) expect((await viaProxy(proxyPort, from, 'GET', `http://linkedin.test:${origin.port}/feed`)).status).toBe(200);
  for (const [i, from] of STAFF.slice(0, 5).entries()) await browse(from, 'staff', i % 2 === 0);
  for (const [i, from] of SALES.slice(0, 5).entries()) await browse(from, 'sales', i % 2 === 0);
  await browse(BOARD[0] ?? '', 'board', true);
  await waitForScrapeOf('leeway_browsing_minutes_total');

  // Wave 2, after Prometheus has seen wave 1: one more person per group, and a policy reload.
  await browse(STAFF[5] ?? '', 'staff', true);
  await browse(SALES[5] ?? '', 'sales', false);
  await browse(BOARD[1] ?? '', 'board', true);
  const reloaded = await leeway.reload();
  usage.policyReloaded(reloaded.ok ? 'success' : 'failure');
  await waitForScrapeOf('leeway_browsing_minutes_total');
  await waitForScrapeOf('leeway_policy_reloads_total');
  // The recording rules run every second; wait until the 1-day ones (evaluated last) exist.
  await until('recording rules evaluated', async () => ((await promQuery('job_category:leeway_minutes_per_active_person:ratio1d')).data?.result.length ?? 0) > 0 ? true : undefined);
  // Each rule group runs on its own schedule, and a rate() rule needs two scrapes after the
  // traffic: wait for every panel query to answer. On a timeout the tests below say which failed.
  await until('every panel query answered', async () => {
    for (const q of queries) if (((await promQuery(substituteVariables(q.expr))).data?.result.length ?? 0) === 0) return undefined;
    return true;
  }).catch(() => undefined);
}, 120_000);

afterAll(async () => {
  if (prometheus !== undefined && prometheus.exitCode === null) {
    const exited = new Promise((resolve) => prometheus?.once('exit', resolve));
    prometheus.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    if (prometheus.exitCode === null) prometheus.kill('SIGKILL');
  }
  await leeway?.close(1_000);
  await origin?.close();
  await policy?.cleanup();
  if (promDir !== undefined) await rm(promDir, { recursive: true, force: true });
});

const queries = DASHBOARDS.flatMap(({ dashboard }) => panelQueries(dashboard));

describe('every dashboard query against a real Prometheus scraping a real Leeway', () => {
  it.each(queries.map((q) => [`${q.dashboard} / ${q.panel} / ${q.refId}`, q] as const))('%s', async (_name, q) => {
    const expr = substituteVariables(q.expr);
    const answer = await promQuery(expr);
    expect(answer.error, expr).toBeUndefined();
    expect(answer.status).toBe('success');
    const result = answer.data?.result ?? [];
    expect(result.length, `empty result for ${expr}`).toBeGreaterThan(0);
    const values = result.map((sample) => Number(sample.value[1]));
    expect(values.some((v) => Number.isFinite(v)), `no finite value for ${expr}: ${JSON.stringify(result)}`).toBe(true);
  });

  it('shows what was sent: positive leisure and business shares, and every coach page continued', async () => {
    const panel = (title: string): string => substituteVariables(queries.find((q) => q.panel === title)?.expr ?? '');
    // Every person's activity fits in a minute or two here, so the shares are near 1 and
    // increase()'s extrapolation can push them a little either way: only their sign is checked.
    expect(await scalarOf(panel('Leisure share of browsing time'))).toBeGreaterThan(0);
    expect(await scalarOf(panel('Business networking share of browsing time'))).toBeGreaterThan(0);
    expect(await scalarOf(panel('Coach pages followed by Continue'))).toBeGreaterThan(0);
    expect(await scalarOf(panel('Internal alternative uptake'))).toBeGreaterThan(0);
    // Counter values themselves are exact: everyone coached chose Continue.
    const shown = await scalarOf('sum(leeway_pages_total{page="coach", outcome="shown"})');
    expect(shown).toBe(14);
    expect(await scalarOf('sum(leeway_pages_total{page="coach", outcome="continued"})')).toBe(shown);
  });

  it.each([
    ['group', 'staff'],
    ['group', 'sales'],
    // A multi-value selection, formatted the way Grafana writes it for a regex matcher.
    ['category', '(social-leisure|community|malware)'],
  ])('panels filtered on $%s = %s return data too', async (variable, value) => {
    const filtered = queries.filter((q) => q.expr.includes(`$${variable}`));
    expect(filtered.length).toBeGreaterThan(3);
    for (const q of filtered) {
      const expr = substituteVariables(q.expr, { ...DEFAULT_VARIABLE_VALUES, [variable]: value });
      const result = (await promQuery(expr)).data?.result ?? [];
      expect(result.length, `empty result for ${expr}`).toBeGreaterThan(0);
    }
  });

  it('sees the same counts in Prometheus as in /metrics', async () => {
    const text = await scrapeMetrics();
    for (const metric of ['leeway_browsing_minutes_total', 'leeway_active_minutes_total', 'leeway_pages_total', 'leeway_purpose_answers_total', 'leeway_quota_exhausted_total']) {
      expect(await scalarOf(`sum(${metric})`), metric).toBe(sumOf(text, metric));
    }
    // Fourteen people each had their quota run out, answered the purpose question and saw a block page.
    expect(sumOf(text, 'leeway_quota_exhausted_total')).toBe(14);
    expect(sumOf(text, 'leeway_purpose_answers_total')).toBe(14);
    expect(await scalarOf('sum(leeway_pages_total{page="block", outcome="shown"})')).toBe(14);
  });

  it('never reports the two-person group: only k-anonymous groups and "other" reach Prometheus', async () => {
    const answer = await promQuery('count by (group) ({__name__=~"leeway_.+", group!=""})');
    const groups = (answer.data?.result ?? []).map((r) => r.metric['group']).sort();
    expect(groups).toEqual(['other', 'sales', 'staff']);
  });

  it('finds every metric a dashboard or recording rule reads in /metrics', async () => {
    const text = await scrapeMetrics();
    const exposed = new Set(text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)?.[0] ?? ''));
    const used = new Set(queries.flatMap((q) => [...readPromql(substituteVariables(q.expr)).metrics]));
    const raw = [...used].filter((m) => !m.includes(':') && m !== 'up');
    expect(raw.length).toBeGreaterThan(15);
    for (const metric of raw) {
      expect(exposed.has(metric), `${metric} missing from /metrics`).toBe(true);
    }
  });
});
