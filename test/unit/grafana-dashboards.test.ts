import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { Panel, RowPanel } from '@grafana/schema';
import { DASHBOARDS, DEFAULT_VARIABLE_VALUES, panelQueries, renderDashboardJson, substituteVariables } from '../../grafana/src/dashboards.js';
import { readPromql } from '../../grafana/src/promql.js';

const ROOT = join(import.meta.dirname, '..', '..');

/**
 * The metric contract of issue 5 (item 3), with the series a histogram exposes and the
 * prom-client default metrics the operations dashboard reads. The e2e test checks the same
 * names against a real /metrics.
 */
const ISSUE_5_METRICS = [
  'leeway_requests_total',
  'leeway_active_minutes_total',
  'leeway_browsing_minutes_total',
  'leeway_people_active',
  'leeway_people_browsing',
  'leeway_daily_minutes_people',
  'leeway_pages_total',
  'leeway_purpose_answers_total',
  'leeway_quota_exhausted_total',
  'leeway_bytes_total',
  'leeway_http_request_duration_seconds_bucket',
  'leeway_http_request_duration_seconds_sum',
  'leeway_http_request_duration_seconds_count',
  'leeway_open_connections',
  'leeway_upstream_errors_total',
  'leeway_tls_certificates_minted_total',
  'leeway_tls_certificate_cache_entries',
  'leeway_tls_client_handshake_failures_total',
  'leeway_policy_reloads_total',
  'leeway_policy_info',
  'process_cpu_seconds_total',
  'process_resident_memory_bytes',
  'nodejs_heap_size_used_bytes',
] as const;

/** Series Prometheus adds itself. */
const PROMETHEUS_SERIES = ['up'];

/**
 * Every label a query may touch. None identifies a person (PRODUCT.md privacy rule 1); `reason`
 * is for handshake failures, `instance` and `job` are Prometheus' own target labels.
 */
const ALLOWED_LABELS = new Set([
  'category', 'site', 'action', 'group', 'band', 'page', 'outcome', 'purpose', 'direction',
  'code', 'kind', 'result', 'hash', 'le', 'reason', 'instance', 'job',
]);

const GRAFANA_BUILTINS = new Set(['__rate_interval', '__interval', '__range']);

interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ record?: string; alert?: string; expr: string }> }>;
}
const rules = parseYaml(readFileSync(join(ROOT, 'prometheus/rules/leeway.rules.yml'), 'utf8')) as RuleFile;
const RECORDED = new Set(rules.groups.flatMap((g) => g.rules.flatMap((r) => (r.record === undefined ? [] : [r.record]))));
const KNOWN_SERIES = new Set<string>([...ISSUE_5_METRICS, ...PROMETHEUS_SERIES, ...RECORDED]);

const queries = DASHBOARDS.flatMap(({ dashboard }) => panelQueries(dashboard));

function flatPanels(panels: ReadonlyArray<Panel | RowPanel>): Panel[] {
  return panels.flatMap((p) => (p.type === 'row' ? [] : [p as Panel]));
}

describe('generated dashboards', () => {
  it.each(DASHBOARDS.map((d) => [d.file, d] as const))('committed grafana/dashboards/%s is what grafana/build.ts writes', (file, d) => {
    const committed = readFileSync(join(ROOT, 'grafana/dashboards', file), 'utf8');
    expect(committed, 'run `npm run dashboards` and commit the result').toBe(renderDashboardJson(d.dashboard));
  });

  it('has the panels issue 6 asks for', () => {
    const titles = DASHBOARDS.flatMap(({ dashboard }) => flatPanels(dashboard.panels ?? []).map((p) => p.title ?? ''));
    for (const wanted of [
      'Leisure share of browsing time',
      'Minutes per active person per day',
      'Daily leisure minutes: how many people in each band',
      'Pages shown and what people did next',
      'Purpose answers',
      'Internal alternative uptake',
      'Daily quotas used up',
      'Leisure share of browsing time by group',
      'Leisure share by group over time',
      'About these figures',
      'Requests per second by action',
      'Latency quantiles',
      'Open connections by kind',
      'Upstream errors by code',
      'Certificates minted per second',
      'Certificate cache entries',
      'Client handshake failures',
      'Policy reloads over the period',
      'Memory',
      'CPU',
    ]) {
      expect(titles).toContain(wanted);
    }
  });

  it('finds a query in every non-text panel', () => {
    expect(queries.length).toBeGreaterThan(30);
    for (const { dashboard } of DASHBOARDS) {
      for (const panel of flatPanels(dashboard.panels ?? [])) {
        if (panel.type !== 'text') {
          expect(panel.targets?.length ?? 0, panel.title).toBeGreaterThan(0);
        }
      }
    }
  });
});

describe.each(queries.map((q) => [`${q.dashboard} / ${q.panel} / ${q.refId}`, q] as const))('query %s', (_name, q) => {
  const expr = substituteVariables(q.expr);
  const facts = readPromql(expr);

  it('has every Grafana variable defined and substituted', () => {
    const dashboard = DASHBOARDS.find((d) => d.dashboard.uid === q.dashboard)?.dashboard;
    const defined = new Set((dashboard?.templating?.list ?? []).map((v) => v.name));
    for (const match of q.expr.matchAll(/\$\{?(\w+)/g)) {
      const name = match[1] ?? '';
      expect(GRAFANA_BUILTINS.has(name) || defined.has(name), `variable $${name}`).toBe(true);
    }
    expect(expr).not.toMatch(/\$/);
  });

  it('parses as PromQL with no error node', () => {
    expect(facts.errors).toEqual([]);
    expect(facts.metrics.size).toBeGreaterThan(0);
  });

  it('uses only issue 5 metric names or our recording rules', () => {
    for (const metric of facts.metrics) {
      expect(KNOWN_SERIES, `unknown metric ${metric}`).toContain(metric);
    }
  });

  it('touches only bounded, non-personal labels', () => {
    for (const label of facts.labels) {
      expect(ALLOWED_LABELS, `label ${label}`).toContain(label);
    }
  });
});

describe('recording and alert rules', () => {
  const all = rules.groups.flatMap((g) => g.rules);
  it.each(all.map((r) => [r.record ?? r.alert ?? '', r] as const))('%s parses and uses known series and labels only', (_name, rule) => {
    const facts = readPromql(rule.expr);
    expect(facts.errors).toEqual([]);
    for (const metric of facts.metrics) {
      expect(KNOWN_SERIES).toContain(metric);
    }
    for (const label of facts.labels) {
      expect(ALLOWED_LABELS).toContain(label);
    }
  });

  it('defines every recording rule a dashboard uses', () => {
    const used = new Set(queries.flatMap((q) => [...readPromql(substituteVariables(q.expr)).metrics].filter((m) => m.includes(':'))));
    expect(used.size).toBeGreaterThan(0);
    for (const name of used) {
      expect(RECORDED).toContain(name);
    }
  });
});

describe('dashboard shape', () => {
  it.each(DASHBOARDS.map((d) => [d.file, d.dashboard] as const))('%s: unique ids, on the 24-column grid, no overlap', (_file, dashboard) => {
    const panels = dashboard.panels ?? [];
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const p of panels) {
      const g = p.gridPos;
      expect(g).toBeDefined();
      if (g === undefined) continue;
      expect(g.x + g.w).toBeLessThanOrEqual(24);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          const key = `${x},${y}`;
          expect(cells.has(key), `${p.title} overlaps at ${key}`).toBe(false);
          cells.add(key);
        }
      }
    }
  });

  it.each(DASHBOARDS.map((d) => [d.file, d.dashboard] as const))('%s: every data panel has a unit and thresholds', (_file, dashboard) => {
    for (const panel of flatPanels(dashboard.panels ?? []).filter((p) => p.type !== 'text')) {
      expect(panel.fieldConfig?.defaults.unit, panel.title).toMatch(/\S/);
      expect(panel.fieldConfig?.defaults.thresholds?.steps.length ?? 0, panel.title).toBeGreaterThan(0);
    }
  });

  it('offers group and category variables and the leisure and business mappings with the bundled defaults', () => {
    const acceptable = DASHBOARDS.find((d) => d.file === 'acceptable-use.json')?.dashboard;
    const vars = new Map((acceptable?.templating?.list ?? []).map((v) => [v.name, v]));
    expect(vars.get('group')?.includeAll).toBe(true);
    expect(vars.get('category')?.includeAll).toBe(true);
    expect(vars.get('leisure')?.current?.value).toEqual(['social-leisure']);
    expect(vars.get('business')?.current?.value).toEqual(['business-networking']);
    expect(DEFAULT_VARIABLE_VALUES['leisure']).toBe('social-leisure');
  });
});

describe('Grafana provisioning', () => {
  it('names the datasource the dashboards default to and loads the dashboards folder', () => {
    const ds = parseYaml(readFileSync(join(ROOT, 'grafana/provisioning/datasources/prometheus.yaml'), 'utf8')) as {
      datasources: Array<{ uid: string; type: string }>;
    };
    const provider = parseYaml(readFileSync(join(ROOT, 'grafana/provisioning/dashboards/leeway.yaml'), 'utf8')) as {
      providers: Array<{ type: string; options: { path: string } }>;
    };
    const defaults = DASHBOARDS.map(({ dashboard }) => dashboard.templating?.list?.find((v) => v.name === 'datasource')?.current?.value);
    expect(ds.datasources[0]?.type).toBe('prometheus');
    expect(defaults.every((uid) => uid === ds.datasources[0]?.uid)).toBe(true);
    expect(provider.providers[0]?.type).toBe('file');
    expect(provider.providers[0]?.options.path).toMatch(/^\//);
  });
});

describe('substituteVariables', () => {
  it.each([
    ['rate(x[$__rate_interval])', 'rate(x[1m])'],
    ['x{group=~"${group}"}', 'x{group=~".*"}'],
    ['x{category=~"$leisure"}[$__range]', 'x{category=~"social-leisure"}[1h]'],
    ['x{a="[[business]]"}', 'x{a="business-networking"}'],
    ['x{a="$unknown"}', 'x{a="$unknown"}'],
  ])('%s → %s', (input, output) => {
    expect(substituteVariables(input)).toBe(output);
  });
});
