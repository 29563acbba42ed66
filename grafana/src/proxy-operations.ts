/**
 * The "Proxy operations" dashboard: is the proxy healthy, fast and correctly configured?
 * For the people who run Leeway, not for managers; it shows no usage by group.
 */
import type { Dashboard } from '@grafana/schema';
import { DashboardCursorSync } from '@grafana/schema';
import { layout, NEUTRAL, row, stat, table, timeSeries, type Step } from './panels.js';
import { datasourceVariable } from './variables.js';

const RI = '$__rate_interval';

/** FIELD-NOTES: Squid adds ~3.5 ms p50 on loopback; anything past 250 ms is felt by people. */
const LATENCY_STEPS: readonly Step[] = [
  { value: null, color: 'green' },
  { value: 0.25, color: 'orange' },
  { value: 1, color: 'red' },
];
const ERROR_RATIO_STEPS: readonly Step[] = [
  { value: null, color: 'green' },
  { value: 0.01, color: 'orange' },
  { value: 0.05, color: 'red' },
];
const FAILURE_STEPS: readonly Step[] = [
  { value: null, color: 'green' },
  { value: 1, color: 'red' },
];

function latency(q: number): { expr: string; legend: string } {
  return {
    expr: `histogram_quantile(${q}, sum by (le) (rate(leeway_http_request_duration_seconds_bucket[${RI}])))`,
    legend: `p${Math.round(q * 100)}`,
  };
}

export const proxyOperations = {
  uid: 'leeway-proxy-operations',
  title: 'Leeway: proxy operations',
  description: 'Traffic, latency, connections, upstream errors, TLS interception, policy reloads and process health.',
  tags: ['leeway', 'operations'],
  editable: true,
  graphTooltip: DashboardCursorSync.Crosshair,
  schemaVersion: 39,
  version: 1,
  refresh: '30s',
  time: { from: 'now-6h', to: 'now' },
  timepicker: {},
  timezone: 'browser',
  annotations: { list: [] },
  links: [],
  templating: { list: [datasourceVariable()] },
  panels: layout([
    row('Traffic'),
    stat({
      title: 'Scrape target up',
      description: 'Leeway admin endpoints Prometheus can scrape right now.',
      size: { w: 4, h: 5 },
      unit: 'none',
      decimals: 0,
      thresholds: [
        { value: null, color: 'red' },
        { value: 1, color: 'green' },
      ],
      queries: [{ expr: 'sum(up{job="leeway"})', legend: 'up', instant: true }],
    }),
    stat({
      title: 'Requests per second',
      description: 'All requests and CONNECTs handled, whatever the action.',
      size: { w: 5, h: 5 },
      unit: 'reqps',
      thresholds: NEUTRAL,
      queries: [{ expr: `sum(rate(leeway_requests_total[${RI}]))`, legend: 'requests/s', instant: true }],
    }),
    stat({
      title: 'p99 latency',
      description: 'Time to the response headers (or to the tunnel established) for 99% of requests.',
      size: { w: 5, h: 5 },
      unit: 's',
      thresholds: LATENCY_STEPS,
      queries: [{ ...latency(0.99), instant: true }],
    }),
    stat({
      title: 'Upstream error ratio',
      description: 'Origin errors (refused, timeout, reset, TLS) per request.',
      size: { w: 5, h: 5 },
      unit: 'percentunit',
      decimals: 2,
      thresholds: ERROR_RATIO_STEPS,
      queries: [
        {
          expr: `sum(rate(leeway_upstream_errors_total[${RI}])) / sum(rate(leeway_requests_total[${RI}]))`,
          legend: 'error ratio',
          instant: true,
        },
      ],
    }),
    stat({
      title: 'Open connections',
      description: 'Client connections and tunnels open now.',
      size: { w: 5, h: 5 },
      unit: 'none',
      decimals: 0,
      thresholds: NEUTRAL,
      queries: [{ expr: 'sum(leeway_open_connections)', legend: 'open', instant: true }],
    }),
    timeSeries({
      title: 'Requests per second by action',
      description: 'allow, coach, suggest, quota, readonly and block decisions per second.',
      size: { w: 12, h: 8 },
      unit: 'reqps',
      min: 0,
      stacked: true,
      queries: [{ expr: `sum by (action) (rate(leeway_requests_total[${RI}]))`, legend: '{{action}}' }],
    }),
    timeSeries({
      title: 'Latency quantiles',
      description: 'p50, p90 and p99 of leeway_http_request_duration_seconds.',
      size: { w: 12, h: 8 },
      unit: 's',
      min: 0,
      thresholds: LATENCY_STEPS,
      queries: [latency(0.5), latency(0.9), latency(0.99)],
    }),
    timeSeries({
      title: 'Open connections by kind',
      description: 'Open client connections, tunnels and WebSockets.',
      size: { w: 8, h: 8 },
      unit: 'none',
      min: 0,
      queries: [{ expr: 'sum by (kind) (leeway_open_connections)', legend: '{{kind}}' }],
    }),
    timeSeries({
      title: 'Upstream errors by code',
      description: 'Origin errors per second by LEEWAY_ERR_* code.',
      size: { w: 8, h: 8 },
      unit: 'reqps',
      min: 0,
      queries: [{ expr: `sum by (code) (rate(leeway_upstream_errors_total[${RI}]))`, legend: '{{code}}' }],
    }),
    timeSeries({
      title: 'Throughput by direction',
      description: 'Bytes per second to and from clients.',
      size: { w: 8, h: 8 },
      unit: 'Bps',
      min: 0,
      queries: [{ expr: `sum by (direction) (rate(leeway_bytes_total[${RI}]))`, legend: '{{direction}}' }],
    }),

    row('TLS interception'),
    timeSeries({
      title: 'Certificates minted per second',
      description: 'Leaf certificates created for intercepted hosts; a steady high rate means the cache is too small.',
      size: { w: 8, h: 7 },
      unit: 'ops',
      min: 0,
      queries: [{ expr: `sum(rate(leeway_tls_certificates_minted_total[${RI}]))`, legend: 'minted/s' }],
    }),
    timeSeries({
      title: 'Certificate cache entries',
      description: 'Leaf certificates held in memory (capped by tls.certCacheSize).',
      size: { w: 8, h: 7 },
      unit: 'none',
      min: 0,
      queries: [{ expr: 'sum(leeway_tls_certificate_cache_entries)', legend: 'entries' }],
    }),
    timeSeries({
      title: 'Client handshake failures',
      description: 'Clients refusing the interception certificate, usually because the CA is not deployed on that machine.',
      size: { w: 8, h: 7 },
      unit: 'ops',
      min: 0,
      thresholds: FAILURE_STEPS,
      queries: [{ expr: `sum by (reason) (rate(leeway_tls_client_handshake_failures_total[${RI}]))`, legend: '{{reason}}' }],
    }),

    row('Policy'),
    stat({
      title: 'Policy reloads over the period',
      description: 'Reloads by result; a failed reload keeps the previous good policy.',
      size: { w: 8, h: 6 },
      unit: 'none',
      decimals: 0,
      thresholds: NEUTRAL,
      queries: [{ expr: 'sum by (result) (increase(leeway_policy_reloads_total[$__range]))', legend: '{{result}}', instant: true }],
    }),
    table({
      title: 'Policy loaded',
      description: 'Hash of the policy each instance runs; two hashes at once means a rollout in progress.',
      size: { w: 16, h: 6 },
      unit: 'none',
      queries: [{ expr: 'max by (instance, hash) (leeway_policy_info)', legend: '{{instance}} {{hash}}', instant: true }],
    }),

    row('Process'),
    timeSeries({
      title: 'Memory',
      description: 'Resident set size and V8 heap in use.',
      size: { w: 12, h: 8 },
      unit: 'bytes',
      min: 0,
      queries: [
        { expr: 'sum by (instance) (process_resident_memory_bytes{job="leeway"})', legend: 'resident {{instance}}' },
        { expr: 'sum by (instance) (nodejs_heap_size_used_bytes{job="leeway"})', legend: 'heap used {{instance}}' },
      ],
    }),
    timeSeries({
      title: 'CPU',
      description: 'CPU seconds per second (1 = one core busy).',
      size: { w: 12, h: 8 },
      unit: 'percentunit',
      min: 0,
      thresholds: [
        { value: null, color: 'green' },
        { value: 0.8, color: 'red' },
      ],
      queries: [{ expr: `sum by (instance) (rate(process_cpu_seconds_total{job="leeway"}[${RI}]))`, legend: '{{instance}}' }],
    }),
  ]),
} satisfies Dashboard;
