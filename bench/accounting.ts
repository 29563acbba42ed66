/**
 * What usage accounting costs (issue 5 target: under 5% of forwarding throughput).
 *
 * 1. End to end: two Leeway instances in this process, one with accounting (ledger, metrics,
 *    anonymous access log to /dev/null-like sink) and one without, forwarding 1 KiB GETs to
 *    the same origin (a child process). autocannon runs in a worker thread; rounds alternate
 *    A/B so drift hits both; the ratio of medians is printed.
 * 2. The account stage alone: requestDone() calls per second with 10,000 people over 3 sites,
 *    against an empty function call as the baseline.
 * Loopback only; every loop is bounded in count and time.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { createUsageAccounting } from '../src/accounting/leeway-accounting.js';
import type { Pseudonym } from '../src/identity/pseudonym.js';
import { createLogger } from '../src/log/logger.js';
import { createLeeway } from '../src/proxy/leeway.js';
import type { Leeway } from '../src/proxy/leeway.js';
import type { RequestRecord } from '../src/proxy/account.js';
import type { CompiledPolicy } from '../src/policy/types.js';

const ROUNDS = 5;
const ROUND_SECONDS = 3;
const CONNECTIONS = 50;
const STAGE_CALLS = 1_000_000;

const POLICY = `settings:
  timeZone: Europe/Paris
  accessLog: anonymous
  interception:
    enabled: false
  proxy:
    clients: [127.0.0.0/8]
    hosts:
      www.facebook.test: 127.0.0.1
categories:
  social-leisure:
    kind: leisure
    domains: [facebook.test]
sites:
  facebook: [facebook.test]
rules:
  - id: social
    description: Social networks are allowed.
    category: social-leisure
    action: allow
default:
  description: Everything else is allowed.
  action: allow
`;

function startOrigin(): Promise<{ child: ChildProcess; port: number }> {
  const code = `const http = require('node:http'); const body = Buffer.alloc(1024, 120);
    const s = http.createServer((q, r) => { r.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length }); r.end(body); });
    s.keepAliveTimeout = 10000; s.listen(0, '127.0.0.1', () => console.log(s.address().port));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout?.once('data', (data: Buffer) => resolve({ child, port: Number(data.toString().trim()) }));
    child.once('error', reject);
  });
}

interface AutocannonResult {
  readonly requests: { readonly average: number };
  readonly non2xx: number;
  readonly errors: number;
}
type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>;

async function loadAutocannon(): Promise<Autocannon> {
  // autocannon ships no types; the module name as a string keeps tsc from looking for them.
  const name: string = 'autocannon';
  return ((await import(name)) as { default: Autocannon }).default;
}

async function reqPerSec(proxyPort: number, originPort: number): Promise<number> {
  const autocannon = await loadAutocannon();
  const result = await autocannon({
    url: `http://127.0.0.1:${proxyPort}`,
    connections: CONNECTIONS,
    duration: ROUND_SECONDS,
    workers: 1,
    // autocannon has no proxy option: an absolute URL as the path makes it a proxy request.
    requests: [{ method: 'GET', path: `http://www.facebook.test:${originPort}/feed?x=1` }],
  });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`bench traffic failed: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return result.requests.average;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

export async function measureStage(policy: CompiledPolicy): Promise<{ perSecond: number; baseline: number }> {
  const usage = createUsageAccounting({
    logger: createLogger({ destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
    accessLogDestination: pino.destination({ dest: '/dev/null', sync: false, minLength: 4096 }),
    defaultMetrics: false,
  });
  usage.attach({ policy, admin: { register: () => undefined } });
  const people = Array.from({ length: 10_000 }, (_, i) => `person-${i}` as Pseudonym);
  const sites = ['facebook', 'youtube', undefined];
  const t0 = Date.parse('2026-06-15T08:00:00Z');
  const records: RequestRecord[] = Array.from({ length: 4096 }, (_, i) => ({
    at: t0 + i * 1000, kind: 'http', pseudonym: people[(i * 7919) % people.length] as Pseudonym, group: i % 2 === 0 ? 'sales' : 'lab',
    category: 'social-leisure', site: sites[i % 3], ruleId: 'social', action: 'allow', status: 200, bytesIn: 0, bytesOut: 1024, durationMs: 2,
  }));
  // In batches that yield to the event loop, as a server does: the buffered access-log
  // destination writes only when the loop turns.
  const run = async (fn: (r: RequestRecord) => void): Promise<number> => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < STAGE_CALLS; i += 1) {
      fn(records[i & 4095] as RequestRecord);
      if ((i & 1023) === 1023) await new Promise((resolve) => setImmediate(resolve));
    }
    return STAGE_CALLS / (Number(process.hrtime.bigint() - start) / 1e9);
  };
  let sink = 0;
  const baseline = await run((r) => {
    sink += r.status;
  });
  const perSecond = await run((r) => usage.accounting.requestDone(r));
  if (sink === 0) console.log('');
  return { perSecond, baseline };
}

export async function run(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'leeway-bench-accounting-'));
  await writeFile(join(dir, 'policy.yaml'), POLICY);
  const origin = await startOrigin();
  const quiet = createLogger({ level: 'info', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  // As `leeway start` runs it: access lines buffered to their own destination.
  const usage = createUsageAccounting({ logger: quiet, accessLogDestination: pino.destination({ dest: '/dev/null', sync: false, minLength: 4096 }) });
  const leeways: Leeway[] = [];
  let policy: CompiledPolicy | undefined;
  try {
    const off = await createLeeway({ policies: dir, listen: '127.0.0.1:0', admin: false, logger: quiet });
    const on = await createLeeway({ policies: dir, listen: '127.0.0.1:0', admin: false, logger: quiet, accounting: usage.accounting });
    usage.attach(on);
    leeways.push(off, on);
    policy = on.policy;
    const offPort = (await off.listen()).proxy.port;
    const onPort = (await on.listen()).proxy.port;

    // Warm-up: JIT, keep-alive pools.
    await reqPerSec(offPort, origin.port);
    await reqPerSec(onPort, origin.port);
    const offRuns: number[] = [];
    const onRuns: number[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      offRuns.push(await reqPerSec(offPort, origin.port));
      onRuns.push(await reqPerSec(onPort, origin.port));
    }
    const offMedian = median(offRuns);
    const onMedian = median(onRuns);
    const accounted = (await usage.metrics?.metrics())?.match(/^leeway_requests_total\{[^}]*\} (\d+)/m)?.[1];
    console.log(`forwarding 1 KiB GET, ${CONNECTIONS} connections, ${ROUNDS} rounds of ${ROUND_SECONDS} s, medians:`);
    console.log(`  accounting off: ${offMedian.toFixed(0)} req/s   rounds ${offRuns.map((v) => v.toFixed(0)).join(' ')}`);
    console.log(`  accounting on:  ${onMedian.toFixed(0)} req/s   rounds ${onRuns.map((v) => v.toFixed(0)).join(' ')}`);
    console.log(`  ratio on/off: ${(onMedian / offMedian).toFixed(3)}  (cost ${((1 - onMedian / offMedian) * 100).toFixed(1)}%; target < 5%)  requests accounted: ${accounted ?? '?'}`);
  } finally {
    for (const leeway of leeways) await leeway.close(1000);
    origin.child.kill();
    await rm(dir, { recursive: true, force: true });
  }

  if (policy === undefined) return;
  const stage = await measureStage(policy);
  console.log(`account stage alone: ${(stage.perSecond / 1e6).toFixed(2)} M requestDone/s (baseline loop ${(stage.baseline / 1e6).toFixed(0)} M/s), ${(1e9 / stage.perSecond).toFixed(0)} ns per request`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await run();
