/**
 * What usage accounting costs (issue 5 target: under 5% of forwarding throughput).
 *
 * 1. End to end: Leeway instances in this process forwarding 1 KiB GETs to one origin (a child
 *    process), autocannon in another child, so this process's CPU time is the proxies' alone:
 *      - accounting off, and "off" again as a control: how far two identical proxies differ is
 *        the noise floor of the run;
 *      - accounting on with the anonymous access log on an asynchronous destination, as `leeway
 *        start` runs it, and on with the aggregate-only log;
 *      - the same two "on" proxies with every call into accounting (and every access-log write)
 *        timed in place, as a share of the time the event loop was busy, plus an empty Accounting
 *        timed the same way: the timer's own share, subtracted. The untimed pairs give the
 *        end-to-end ratios, so the timer never weighs on them.
 *    Rotations run every variant once, each rotation in another order, so a trend in the
 *    machine's load hits all alike; ratios are paired within a rotation (seconds apart), then the
 *    median and interquartile range over rotations are printed. CPU per request is the steadier
 *    figure on a shared machine, where throughput swings with others' load.
 * 2. The account stage alone: requestDone() per second, 10,000 people over 3 sites.
 *
 * The shipped code (dist/) runs when it is up to date (npm run bench builds first), else the
 * sources through tsx. BENCH_ROUNDS (rotations, default 10), BENCH_SECONDS (per round, default
 * 1.5). Loopback only; every loop is bounded in count and time.
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
import type * as LeewayAccountingModule from '../src/accounting/leeway-accounting.js';
import type { Pseudonym } from '../src/identity/pseudonym.js';
import type * as LoggerModule from '../src/log/logger.js';
import type * as LeewayModule from '../src/proxy/leeway.js';
import type { Leeway } from '../src/proxy/leeway.js';
import type { Accounting, RequestRecord } from '../src/proxy/account.js';
import type { CompiledPolicy } from '../src/policy/types.js';
import type * as PolicyTypesModule from '../src/policy/types.js';
import { distIsFresh, median, percentile, repoRoot } from './lib/common.js';

const ROUNDS = Math.max(3, Number(process.env.BENCH_ROUNDS ?? 10));
const ROUND_SECONDS = Math.max(1, Number(process.env.BENCH_SECONDS ?? 1.5));
const CONNECTIONS = 50;
const STAGE_CALLS = 1_000_000;
/** Issue 5: accounting costs under 5% of forwarding. */
const TARGET = 0.05;

const SOURCES = ['accounting/accounting', 'accounting/leeway-accounting', 'accounting/usage-ledger', 'metrics/metrics', 'log/access-log', 'log/logger', 'proxy/leeway', 'proxy/pipeline', 'proxy/forward'];
const fromDist = distIsFresh(SOURCES);
/** The module from dist/ when the build is fresh (under tsx, esbuild's keep-names helper adds a cost per closure), else from src/. */
function load<T>(name: string): Promise<T> {
  return import(pathToFileURL(join(repoRoot, fromDist ? 'dist' : 'src', `${name}.${fromDist ? 'js' : 'ts'}`)).href) as Promise<T>;
}
const { createUsageAccounting } = await load<typeof LeewayAccountingModule>('accounting/leeway-accounting');
const { createLogger } = await load<typeof LoggerModule>('log/logger');
const { createLeeway } = await load<typeof LeewayModule>('proxy/leeway');
const { NO_USAGE } = await load<typeof PolicyTypesModule>('policy/types');

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
  /**
   * Time the event loop was busy (not waiting for I/O), µs: the in-place share divides by it.
   * Both are wall-clock times on the same thread, so when other processes preempt this one
   * they grow alike and the share stays true, where a share of CPU time would not.
   */
  readonly busyMicros: number;
}

// autocannon runs in a child process so the CPU this process uses is the proxy's alone: CPU per
// request is steady on a busy machine where throughput is not.
const LOAD_SCRIPT = `const autocannon = require('autocannon');
const o = JSON.parse(process.argv[1]);
autocannon(o).then((r) => process.stdout.write(JSON.stringify({ total: r.requests.total, average: r.requests.average, non2xx: r.non2xx, errors: r.errors })));`;

function drive(proxyPort: number, originPort: number): Promise<{ total: number; average: number; non2xx: number; errors: number }> {
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
  const loop = performance.eventLoopUtilization();
  const result = await drive(proxyPort, originPort);
  const cpu = process.cpuUsage(before);
  const busy = performance.eventLoopUtilization(loop).active * 1000;
  if (result.non2xx > 0 || result.errors > 0 || result.total === 0) throw new Error(`bench traffic failed: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return { requestsPerSecond: result.average, cpuMicrosPerRequest: (cpu.user + cpu.system) / result.total, requests: result.total, busyMicros: busy };
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
  /** Time spent inside accounting calls, summed over the variant's measured rounds (timed variants only). */
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

/** Median and interquartile range of a variant's per-rotation ratios to "off". */
interface Paired {
  readonly median: number;
  readonly q1: number;
  readonly q3: number;
}

function paired(variant: Variant, base: Variant, pick: (r: Round) => number): Paired {
  const ratios = variant.rounds.map((r, i) => pick(r) / pick(base.rounds[i] as Round));
  return { median: median(ratios), q1: percentile(ratios, 25), q3: percentile(ratios, 75) };
}

const pct = (ratio: number): string => `${ratio >= 1 ? '+' : '−'}${(Math.abs(ratio - 1) * 100).toFixed(1)}%`;
const range = (p: Paired): string => `×${p.median.toFixed(3)} (IQR ${p.q1.toFixed(3)}-${p.q3.toFixed(3)})`;

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
    const add = async (name: string, policies: string, accounting: 'off' | 'on' | 'empty', timed: boolean): Promise<Variant> => {
      // As `leeway start` runs it: access lines on their own asynchronous destination.
      const destination = pino.destination({ dest: '/dev/null', sync: false });
      const timing = timed ? { ns: 0n } : undefined;
      const usage = createUsageAccounting({ logger: quiet, accessLogDestination: timing === undefined ? destination : timedDestination(destination, timing) });
      // The pipeline's own cost of reporting (records built, usage asked) with nothing behind it.
      const empty: Accounting = { usage: () => NO_USAGE, requestDone: () => undefined, tunnelBytes: () => undefined, pageEvent: () => undefined };
      const inner = accounting === 'on' ? usage.accounting : accounting === 'empty' ? empty : undefined;
      const given = inner === undefined ? undefined : timing === undefined ? inner : timedAccounting(inner, timing);
      const leeway = await createLeeway({ policies, listen: '127.0.0.1:0', admin: false, logger: quiet, ...(given === undefined ? {} : { accounting: given }) });
      if (accounting === 'on') usage.attach(leeway);
      leeways.push(leeway);
      if (accounting === 'on' && policies.endsWith('anonymous')) policy = leeway.policy;
      const variant: Variant = { name, port: (await leeway.listen()).proxy.port, rounds: [], timing };
      variants.push(variant);
      return variant;
    };
    const base = await add('accounting off', join(dir, 'anonymous'), 'off', false);
    // The same as "off" again: how far two identical proxies differ is the noise floor of this run.
    const control = await add('off again (control)', join(dir, 'anonymous'), 'off', false);
    const anonymous = await add('on, anonymous log', join(dir, 'anonymous'), 'on', false);
    const aggregate = await add('on, aggregate-only', join(dir, 'aggregate'), 'on', false);
    const timerFloor = await add('timed: empty', join(dir, 'aggregate'), 'empty', true);
    const timedAnonymous = await add('timed: anonymous', join(dir, 'anonymous'), 'on', true);
    const timedAggregate = await add('timed: aggregate', join(dir, 'aggregate'), 'on', true);

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
    console.log(`forwarding 1 KiB GET through Leeway (${fromDist ? 'dist/' : 'src/ through tsx'}), ${CONNECTIONS} connections, ${ROUNDS} rotations of ${ROUND_SECONDS} s per variant; medians (rounds as req/s / CPU µs per request):`);
    for (const variant of variants) {
      const ratio = variant === base || variant.timing !== undefined
        ? ''
        : `  CPU/request ${range(paired(variant, base, (r) => r.cpuMicrosPerRequest))}, throughput ${range(paired(variant, base, (r) => r.requestsPerSecond))}`;
      console.log(`  ${variant.name.padEnd(20)} ${rps(variant.rounds).toFixed(0).padStart(6)} req/s ${cpu(variant.rounds).toFixed(1).padStart(7)} µs CPU/request${ratio}   (${show(variant.rounds)})`);
    }
    // In place: the share of the event loop's busy time spent inside accounting, less the share
    // the timer itself takes around an empty accounting; times the untimed proxy's CPU per
    // request, what that share costs per request.
    const busyShare = (variant: Variant): number => Number(variant.timing?.ns ?? 0n) / 1000 / variant.rounds.reduce((sum, r) => sum + r.busyMicros, 0);
    const floor = busyShare(timerFloor);
    const inPlace = (timed: Variant, untimed: Variant): { micros: number; share: number } => {
      const share = busyShare(timed) - floor;
      return { share, micros: share * cpu(untimed.rounds) };
    };
    const place = { anonymous: inPlace(timedAnonymous, anonymous), aggregate: inPlace(timedAggregate, aggregate) };
    console.log(`  in place, the timer's own share of the busy event loop around an empty accounting: ${(floor * 100).toFixed(2)}% (subtracted below)`);
    for (const [name, figure] of [['anonymous log', place.anonymous], ['aggregate-only', place.aggregate]] as const) {
      console.log(`  in place, ${name}: ${(figure.share * 100).toFixed(2)}% of the busy event loop inside accounting ≈ ${figure.micros.toFixed(2)} µs of the proxy's CPU per request`);
    }

    // The verdict on the default mode (anonymous log). End to end, the cost is the larger of the
    // CPU per request added and the throughput lost; the control says how far noise alone moves it.
    const cpuRatio = paired(anonymous, base, (r) => r.cpuMicrosPerRequest);
    const rpsRatio = paired(anonymous, base, (r) => r.requestsPerSecond);
    const noiseCpu = paired(control, base, (r) => r.cpuMicrosPerRequest);
    const noiseRps = paired(control, base, (r) => r.requestsPerSecond);
    const noise = Math.max(Math.abs(noiseCpu.median - 1), Math.abs(noiseRps.median - 1));
    const endToEnd = Math.max(cpuRatio.median - 1, 1 - rpsRatio.median);
    const verdict = endToEnd < TARGET && place.anonymous.share < TARGET
      ? 'MET'
      : endToEnd >= TARGET + noise
        ? 'NOT MET'
        : place.anonymous.share < TARGET ? 'MET in place; end to end within the noise of this run' : 'NOT MET in place';
    console.log(
      `  verdict, accounting on (anonymous log) vs off, target under ${TARGET * 100}%: ${verdict}. End to end CPU/request ${pct(cpuRatio.median)}, throughput ${pct(rpsRatio.median)} ` +
        `(noise floor: control vs off CPU/request ${pct(noiseCpu.median)}, throughput ${pct(noiseRps.median)}); in place ${(place.anonymous.share * 100).toFixed(1)}% ≈ ${place.anonymous.micros.toFixed(2)} µs per request`,
    );
  } finally {
    for (const leeway of leeways) await leeway.close(1000);
    origin.child.kill();
    await rm(dir, { recursive: true, force: true });
  }

  if (policy === undefined) return;
  const stage = await measureStage(policy);
  console.log(`account stage alone (anonymous log): ${(stage.perSecond / 1e6).toFixed(2)} M requestDone/s (baseline loop ${(stage.baseline / 1e6).toFixed(0)} M/s), ${(1e9 / stage.perSecond).toFixed(0)} ns per request`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await run();
