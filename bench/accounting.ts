/**
 * What usage accounting costs (issue 5 target: under 5% of forwarding throughput).
 *
 * 1. End to end: Leeway instances in this process forwarding 1 KiB GETs to one origin (a child
 *    process): accounting off; an empty Accounting (the pipeline's own cost of reporting);
 *    accounting on with the anonymous access log on an asynchronous destination, as `leeway
 *    start` runs it; on with the aggregate-only log; and a second "off" as a control, whose
 *    ratio to the first is the noise floor of the run. autocannon runs in another child
 *    process, so this process's CPU time is the proxies' alone. Rounds rotate the order;
 *    printed: req/s and CPU µs per request (medians) and ratios to "off". CPU per request is
 *    the steadier figure on a shared machine, where throughput swings with others' load.
 * 2. The account stage alone: requestDone() per second, 10,000 people over 3 sites.
 * Loopback only; every loop is bounded in count and time.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import type { DestinationStream } from 'pino';
import { createUsageAccounting } from '../src/accounting/leeway-accounting.js';
import type { Pseudonym } from '../src/identity/pseudonym.js';
import { createLogger } from '../src/log/logger.js';
import { createLeeway } from '../src/proxy/leeway.js';
import type { Leeway } from '../src/proxy/leeway.js';
import type { Accounting, RequestRecord } from '../src/proxy/account.js';
import type { CompiledPolicy } from '../src/policy/types.js';
import { NO_USAGE } from '../src/policy/types.js';
import { median } from './lib/common.js';

const ROUNDS = 8;
const ROUND_SECONDS = 2;
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

interface Round {
  readonly requestsPerSecond: number;
  /** CPU time this process (the proxies) spent per request served, in µs. */
  readonly cpuMicrosPerRequest: number;
  readonly requests: number;
}

// autocannon runs in a child process so the CPU this process uses is the proxy's alone: CPU per
// request is steady on a busy machine where throughput is not.
const LOAD_SCRIPT = `const autocannon = require('autocannon');
const o = JSON.parse(process.argv[1]);
autocannon(o).then((r) => process.stdout.write(JSON.stringify({ total: r.requests.total, average: r.requests.average, non2xx: r.non2xx, errors: r.errors })));`;

function load(proxyPort: number, originPort: number): Promise<{ total: number; average: number; non2xx: number; errors: number }> {
  const options = {
    url: `http://127.0.0.1:${proxyPort}`,
    connections: CONNECTIONS,
    duration: ROUND_SECONDS,
    // autocannon has no proxy option: an absolute URL as the path makes it a proxy request.
    requests: [{ method: 'GET', path: `http://www.facebook.test:${originPort}/feed?x=1` }],
  };
  const child = spawn(process.execPath, ['-e', LOAD_SCRIPT, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout?.on('data', (data: Buffer) => (out += data.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill(), (ROUND_SECONDS + 30) * 1000);
    child.once('error', reject);
    child.once('close', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out) as { total: number; average: number; non2xx: number; errors: number });
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}

async function round(proxyPort: number, originPort: number): Promise<Round> {
  const before = process.cpuUsage();
  const result = await load(proxyPort, originPort);
  const cpu = process.cpuUsage(before);
  if (result.non2xx > 0 || result.errors > 0 || result.total === 0) throw new Error(`bench traffic failed: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return { requestsPerSecond: result.average, cpuMicrosPerRequest: (cpu.user + cpu.system) / result.total, requests: result.total };
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

interface Variant {
  readonly name: string;
  readonly port: number;
  readonly rounds: Round[];
  /** Time spent inside accounting calls, summed over the variant's measured rounds. */
  readonly timing?: { ns: bigint } | undefined;
}

function timedAccounting(inner: Accounting, timing: { ns: bigint }): Accounting {
  const time = <T>(fn: () => T): T => {
    const start = process.hrtime.bigint();
    try {
      return fn();
    } finally {
      timing.ns += process.hrtime.bigint() - start;
    }
  };
  return {
    usage: (p) => time(() => inner.usage(p)),
    requestDone: (r) => time(() => inner.requestDone(r)),
    tunnelBytes: (r) => time(() => inner.tunnelBytes(r)),
    pageEvent: (e) => time(() => inner.pageEvent(e)),
    connection: (socket, kind) => time(() => inner.connection?.(socket, kind)),
  };
}

function timedDestination(destination: DestinationStream, timing: { ns: bigint }): DestinationStream {
  return {
    write(chunk: string): void {
      const start = process.hrtime.bigint();
      destination.write(chunk);
      timing.ns += process.hrtime.bigint() - start;
    },
  };
}

export async function run(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'leeway-bench-accounting-'));
  await mkdir(join(dir, 'anonymous'));
  await mkdir(join(dir, 'aggregate'));
  await writeFile(join(dir, 'anonymous', 'policy.yaml'), POLICY);
  await writeFile(join(dir, 'aggregate', 'policy.yaml'), POLICY.replace('accessLog: anonymous', 'accessLog: aggregate-only'));
  const origin = await startOrigin();
  const quiet = createLogger({ level: 'info', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const leeways: Leeway[] = [];
  let policy: CompiledPolicy | undefined;
  try {
    const variants: Variant[] = [];
    const add = async (name: string, policies: string, accounted: boolean): Promise<void> => {
      // As `leeway start` runs it: access lines on their own asynchronous destination, and every
      // call into accounting (and every access-log write) timed in place, for the in-situ share.
      const destination = pino.destination({ dest: '/dev/null', sync: false });
      const timing = { ns: 0n };
      const usage = createUsageAccounting({ logger: quiet, accessLogDestination: timedDestination(destination, timing) });
      const leeway = await createLeeway({ policies, listen: '127.0.0.1:0', admin: false, logger: quiet, ...(accounted ? { accounting: timedAccounting(usage.accounting, timing) } : {}) });
      if (accounted) usage.attach(leeway);
      leeways.push(leeway);
      policy = leeway.policy;
      variants.push({ name, port: (await leeway.listen()).proxy.port, rounds: [], timing: accounted ? timing : undefined });
    };
    await add('accounting off', join(dir, 'anonymous'), false);
    // The same as "off" again: how far two identical proxies differ is the noise floor of this run.
    await add('off again (control)', join(dir, 'anonymous'), false);
    {
      // The pipeline's own cost of reporting (records built, usage asked) with nothing behind it.
      const empty: Accounting = { usage: () => NO_USAGE, requestDone: () => undefined, tunnelBytes: () => undefined, pageEvent: () => undefined };
      const leeway = await createLeeway({ policies: join(dir, 'aggregate'), listen: '127.0.0.1:0', admin: false, logger: quiet, accounting: empty });
      leeways.push(leeway);
      variants.push({ name: 'empty accounting', port: (await leeway.listen()).proxy.port, rounds: [] });
    }
    await add('on, anonymous log', join(dir, 'anonymous'), true);
    await add('on, aggregate-only', join(dir, 'aggregate'), true);

    // Warm-up: JIT, keep-alive pools.
    for (const variant of variants) await round(variant.port, origin.port);
    for (const variant of variants) if (variant.timing !== undefined) variant.timing.ns = 0n;
    for (let i = 0; i < ROUNDS; i += 1) {
      // Rotate which goes first, so a trend in the machine's load hits every variant alike.
      for (let j = 0; j < variants.length; j += 1) {
        const variant = variants[(i + j) % variants.length] as Variant;
        variant.rounds.push(await round(variant.port, origin.port));
      }
    }
    const rps = (rounds: Round[]): number => median(rounds.map((r) => r.requestsPerSecond));
    const cpu = (rounds: Round[]): number => median(rounds.map((r) => r.cpuMicrosPerRequest));
    const show = (rounds: Round[]): string => rounds.map((r) => `${r.requestsPerSecond.toFixed(0)}/${r.cpuMicrosPerRequest.toFixed(0)}`).join(' ');
    const base = variants[0] as Variant;
    // Ratios taken within each rotation (variants measured seconds apart), then the median: a
    // drift in the machine's load between rotations cancels out.
    const pairedRatio = (variant: Variant, pick: (r: Round) => number): number =>
      median(variant.rounds.map((r, i) => pick(r) / pick(base.rounds[i] as Round)));
    console.log(`forwarding 1 KiB GET through Leeway, ${CONNECTIONS} connections, ${ROUNDS} rotations of ${ROUND_SECONDS} s per variant; medians (rounds as req/s / CPU µs per request):`);
    for (const variant of variants) {
      const ratio = variant === base
        ? ''
        : `  CPU/request ×${pairedRatio(variant, (r) => r.cpuMicrosPerRequest).toFixed(3)}, throughput ×${pairedRatio(variant, (r) => r.requestsPerSecond).toFixed(3)}`;
      console.log(`  ${variant.name.padEnd(20)} ${rps(variant.rounds).toFixed(0).padStart(6)} req/s ${cpu(variant.rounds).toFixed(1).padStart(7)} µs CPU/request${ratio}   (${show(variant.rounds)})`);
    }
    // The steady figure: time spent inside accounting during the run, per request, against the
    // same proxy's CPU per request (both from the same rounds, so the machine's load cancels).
    for (const variant of variants) {
      if (variant.timing === undefined) continue;
      const requests = variant.rounds.reduce((sum, r) => sum + r.requests, 0);
      const cpuTotal = variant.rounds.reduce((sum, r) => sum + r.cpuMicrosPerRequest * r.requests, 0);
      const inAccounting = Number(variant.timing.ns) / 1000 / requests;
      console.log(`  in situ, ${variant.name}: ${inAccounting.toFixed(1)} µs per request inside accounting = ${((inAccounting / (cpuTotal / requests)) * 100).toFixed(1)}% of that proxy's CPU per request`);
    }
    console.log('  ratios: median of per-rotation ratios to "accounting off"; target: accounting costs under 5% (CPU/request ≤ ×1.05, throughput ≥ ×0.95)');
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
