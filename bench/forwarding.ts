/**
 * Forwarding benchmark (issue 3): the same loads direct, through Leeway, through a 30-line
 * http-proxy forwarder with a keep-alive agent, and through Squid (when /usr/sbin/squid exists,
 * started here on loopback with caching off). Each proxy runs in its own process pinned to
 * core 1 (`taskset -c 1`); for the HTTP loads, origin and load generator are not pinned (this
 * reproduces the reference ratios of issue 3, Squid at 0.3-0.45x direct). BENCH_PIN_LOAD=1
 * confines them to core 0, leaving core 1 to the proxy alone: a proxy's own CPU per request then
 * sets its rate.
 *
 *   1 KiB GET, 50 keep-alive connections: requests/s, p50/p99 latency (autocannon, absolute URL as path)
 *   1 MiB GET, 10 connections: MiB/s
 *   CONNECT tunnel, 4 streams from a TCP source: MiB/s (direct: the same streams without a proxy)
 *
 * The tunnel load always runs with source and sink on core 0 and the proxy alone on core 1,
 * whatever BENCH_PIN_LOAD says: in production client and origin are other machines, and the
 * question is whether the relay slows the stream down, not how three processes share two cores
 * (unpinned, every relay is CPU-starved and even Squid measures 0.73x direct). The sink is a
 * lean client process of its own (TUNNEL_SINK); until 2026-11-27 it was this process, which cost
 * twice as much CPU per MiB and made core 0 the limit (see TUNNEL_SINK and the README).
 * "leeway, peeking" is Leeway with interception available (a CA configured) for a tunnel it does
 * not intercept: the client's first bytes are read for a ClientHello before the blind relay.
 *
 * Then, for the 1 KiB target, Leeway and Squid interleaved (see interleaved()): each alone on core
 * 1 in turn, in windows of 2 s paired with their neighbours, loaded by a lean generator on core 0
 * with the origin. Measured in rounds, a proxy's figure depends on the state of the machine in its
 * few seconds, and on whether autocannon (on core 0 with the origin, where direct 1 KiB already
 * reads no more than Leeway at times) keeps it saturated; the interleaved pairs judge the target.
 * The tunnel load is interleaved as well (interleavedTunnels()): direct and the relays in turn, in
 * windows of 2 s, each relay judged against the direct window of its own group.
 *
 * "leeway" is `leeway start` as shipped (metrics and usage accounting on, access log off like
 * Squid's here); "leeway core" is createLeeway() alone, to show what the pipeline itself costs.
 * Each proxy's CPU time per unit of work is printed too: on a shared machine it is steadier
 * than wall-clock rates.
 *
 * Ratios are to direct and to Squid measured in the same run. BENCH_SECONDS (default 5) and
 * BENCH_ROUNDS (default 1; the median is reported) tune the length; BENCH_INTERLEAVED_PAIRS
 * (default 10; 0 skips them) the interleaved comparison; BENCH_VERBOSE=1 prints each round's
 * figures too.
 * Run alone: `npx tsx bench/forwarding.ts`.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type * as LeewayModule from '../src/index.js';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
// @ts-expect-error autocannon ships no type declarations; the part used here is typed below.
import autocannonUntyped from 'autocannon';
import { distIsFresh, firstJsonLine, median, percentile, repoRoot, spawnNodeOn } from './lib/common.js';
import { startLoadGenerator } from './lib/keepalive-load.js';
import type { LoadCounts, LoadOptions, LoadSelect } from './lib/keepalive-load.js';
import { generateCa, writeCa } from '../src/tls/ca.js';

interface CannonResult {
  readonly requests: { readonly average: number; readonly total: number };
  readonly latency: { readonly p50: number; readonly p99: number };
  readonly throughput: { readonly average: number; readonly total: number };
  readonly non2xx: number;
  readonly errors: number;
}
const autocannon = autocannonUntyped as (options: { url: string; connections: number; duration: number; requests: { method: string; path: string }[] }) => Promise<CannonResult>;

// Children run this same file with --role (origin, core, naive).
const here = fileURLToPath(import.meta.url);
const SECONDS = Number(process.env.BENCH_SECONDS ?? '5');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? '1');
// BENCH_LOADS=1k,1m,tunnel picks the loads (all by default), for A/B runs while tuning.
const LOADS = new Set((process.env.BENCH_LOADS ?? '1k,1m,tunnel').split(','));
/** Each target's warm-up, before the rounds. */
const WARM_UP_SECONDS = 2;
// BENCH_INTERLEAVED_PAIRS: pairs of windows of the interleaved comparison of Leeway and Squid (default 10, 0 skips it).
const INTERLEAVED_PAIRS = Math.max(0, Number(process.env.BENCH_INTERLEAVED_PAIRS ?? '10'));
// BENCH_VERBOSE=1 prints each round's figures as they come, besides the medians.
const VERBOSE = process.env.BENCH_VERBOSE === '1';
const KIB = Buffer.alloc(1024, 97);
const MIB = Buffer.alloc(1024 * 1024, 98);

// ---- roles run in child processes ---------------------------------------------------------------

/** The origin: /1k and /1m over HTTP, and a TCP source that streams as fast as it can. */
async function originRole(): Promise<void> {
  const server = http.createServer((req, res) => {
    const body = req.url === '/1m' ? MIB : KIB;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const chunk = Buffer.alloc(256 * 1024, 99);
  const source = net.createServer((socket) => {
    socket.on('error', () => undefined);
    const pump = (): void => {
      while (!socket.destroyed && socket.write(chunk));
    };
    socket.on('drain', pump);
    // Start once the client has said something (through a proxy: after the tunnel is up).
    socket.once('data', pump);
  });
  await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
  console.log(JSON.stringify({ http: (server.address() as AddressInfo).port, source: (source.address() as AddressInfo).port }));
}

/** The naive baseline: http-proxy with a keep-alive agent, and CONNECT piped with `net`. */
async function naiveRole(): Promise<void> {
  const { default: httpProxy } = await import('http-proxy');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const proxy = httpProxy.createProxyServer({ agent });
  proxy.on('error', (_error, _req, res) => {
    if ('writeHead' in res && !res.headersSent) res.writeHead(502);
    res.end();
  });
  const server = http.createServer((req, res) => proxy.web(req, res, { target: req.url, prependPath: false }));
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const [host = '', port = '443'] = (req.url ?? '').split(':');
    const upstream = net.connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }));
}

/** Run Leeway from the build when it is up to date (see distIsFresh), else from the sources through tsx. */
function leewayEntry(name: 'cli' | 'index'): string[] {
  return distIsFresh([name, 'proxy/pipeline', 'proxy/forward', 'proxy/origin-pool', 'proxy/read-buffer', 'proxy/response-head', 'proxy/tunnel', 'tls/client-hello']) ? [join(repoRoot, 'dist', `${name}.js`)] : ['--import', 'tsx', join(repoRoot, 'src', `${name}.ts`)];
}

/** Leeway's core alone (createLeeway, no accounting or metrics): what the pipeline itself costs. */
async function coreRole(policies: string): Promise<void> {
  const entry = leewayEntry('index');
  const { createLeeway } = (await import(pathToFileURL(entry[entry.length - 1] as string).href)) as typeof LeewayModule;
  const leeway = await createLeeway({ policies, listen: '127.0.0.1:0', admin: false });
  const addresses = await leeway.listen();
  // A clean exit on SIGINT lets `node --cpu-prof` write its profile when profiling this role.
  process.once('SIGINT', () => process.exit(0));
  console.log(JSON.stringify({ port: addresses.proxy.port }));
}

// ---- the bench ----------------------------------------------------------------------------------

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  mibps1m: number;
  tunnelMibps: number;
  /** Proxy CPU time per 1 KiB request (µs), per MiB forwarded and per MiB tunnelled (ms): robust to noisy neighbours. */
  cpuPerRequestUs: number;
  cpuPerMibMs: number;
  cpuPerTunnelMibMs: number;
  /** The tunnel client's and source's own CPU per MiB (ms): what the relay's way of reading and writing costs the endpoints. */
  clientPerTunnelMibMs: number;
  sourcePerTunnelMibMs: number;
}

interface Target {
  readonly name: string;
  /** Proxy port, or undefined for direct. */
  readonly port: number | undefined;
  /** Proxy process id, for its CPU time. */
  readonly pid: number | undefined;
  /** The host named in CONNECT (default 127.0.0.1). */
  readonly connectHost?: string;
  /** Measured on the tunnel load only. */
  readonly tunnelOnly?: boolean;
}

/** user+system CPU seconds of a process, from /proc (Linux); NaN elsewhere. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime), counted from after the command name: indexes 11 and 12.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}
const CLOCK_TICKS = 100;

const PIN_LOAD = process.env.BENCH_PIN_LOAD === '1';

/** Confine a process and all its threads to these cores (Linux taskset); a no-op without it. */
function pinProcess(pid: number | undefined, cores: string): void {
  if (pid === undefined || !existsSync('/usr/bin/taskset')) return;
  spawnSync('/usr/bin/taskset', ['-a', '-p', '-c', cores, String(pid)], { stdio: 'ignore' });
}

/**
 * Runs `measure` with these processes (the origin, this one) on core 0 and each proxy alone on
 * core 1, whatever BENCH_PIN_LOAD says; they are free again afterwards unless it asked to pin.
 */
async function onCore0<T>(pids: readonly (number | undefined)[], measure: () => Promise<T>): Promise<T> {
  for (const pid of pids) pinProcess(pid, '0');
  try {
    return await measure();
  } finally {
    if (!PIN_LOAD) for (const pid of pids) pinProcess(pid, `0-${cpus().length - 1}`);
  }
}

/** A proxy on core 1; the origin on core 0 with BENCH_PIN_LOAD=1, else unpinned. */
function spawnRole(args: string[], pin: boolean): ChildProcess {
  const command = (pin || PIN_LOAD) && existsSync('/usr/bin/taskset') ? '/usr/bin/taskset' : process.execPath;
  const full = command === process.execPath ? args : ['-c', pin ? '1' : '0', process.execPath, ...args];
  return spawn(command, full, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LEEWAY_LOG_LEVEL: 'info' } });
}


async function cannon(target: Target, url: string, connections: number, seconds = SECONDS): Promise<CannonResult> {
  const base = target.port === undefined ? new URL(url).origin : `http://127.0.0.1:${target.port}`;
  return autocannon({
    url: base,
    connections,
    duration: seconds,
    // Through a proxy the request target is the absolute URL (autocannon has no proxy option).
    requests: [{ method: 'GET', path: target.port === undefined ? new URL(url).pathname : url }],
  });
}

/**
 * The tunnel's client: a lean Node process of its own (plain `node -e`, nothing else loaded) that
 * opens 4 CONNECT tunnels (or direct sockets) to the TCP source, reads them for the given time
 * and prints what it received and its own CPU time. Not this process: a sink in the bench's
 * process, with its larger heap and autocannon loaded, spent about twice a lean client's CPU per
 * MiB (1.2-1.6 ms against 0.55-0.75 ms), so with source and sink sharing core 0 the figure
 * measured how busy core 0 was, not whether the relay slows a stream down.
 */
const TUNNEL_SINK = `const net = require('node:net');
const o = JSON.parse(process.argv[1]);
let bytes = 0, reads = 0, started = 0, start, cpu;
const sockets = [];
const begin = () => {
  start = process.hrtime.bigint();
  cpu = process.cpuUsage();
  for (const s of sockets) {
    s.on('data', (chunk) => { bytes += chunk.length; reads += 1; });
    s.resume();
    s.write('go');
  }
  setTimeout(() => {
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const used = process.cpuUsage(cpu);
    process.stdout.write(JSON.stringify({ bytes, reads, seconds, cpuSeconds: (used.user + used.system) / 1e6 }) + '\\n');
    process.exit(0);
  }, o.seconds * 1000);
};
const ready = (s) => { s.pause(); if (++started === o.streams) begin(); };
for (let i = 0; i < o.streams; i += 1) {
  const s = net.connect({ host: '127.0.0.1', port: o.port });
  sockets.push(s);
  s.on('error', (e) => { console.error(String(e)); process.exit(1); });
  s.once('connect', () => {
    if (o.authority === undefined) return ready(s);
    s.write('CONNECT ' + o.authority + ' HTTP/1.1\\r\\nHost: ' + o.authority + '\\r\\n\\r\\n');
    let head = '';
    const onData = (chunk) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\\r\\n\\r\\n');
      if (end === -1) return;
      s.off('data', onData);
      if (!/^HTTP\\/1\\.[01] 200/.test(head)) { console.error('CONNECT refused: ' + head.split('\\r\\n')[0]); process.exit(1); }
      ready(s);
    };
    s.on('data', onData);
  });
}
setTimeout(() => { console.error('tunnel sink: no tunnel up in 30 s'); process.exit(1); }, 30_000).unref();`;

/** 4 CONNECT tunnels (or direct sockets) reading from the TCP source for SECONDS, from a lean client on core 0; MiB/s. */
async function tunnelRate(target: Target, sourcePort: number, seconds = SECONDS): Promise<{ mibps: number; mib: number; clientMsPerMib: number }> {
  const options = {
    port: target.port ?? sourcePort,
    authority: target.port === undefined ? undefined : `${target.connectHost ?? '127.0.0.1'}:${sourcePort}`,
    streams: 4,
    seconds,
  };
  const child = spawnNodeOn(0, ['-e', TUNNEL_SINK, JSON.stringify(options)], ['ignore', 'pipe', 'pipe']);
  let out = '';
  let err = '';
  child.stdout?.on('data', (data: Buffer) => (out += data.toString()));
  child.stderr?.on('data', (data: Buffer) => (err += data.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 60) * 1000);
    child.once('error', reject);
    child.once('close', (exitCode) => {
      clearTimeout(timer);
      resolve(exitCode);
    });
  });
  if (code !== 0) throw new Error(`${target.name}: tunnel client failed: ${err.trim() || `exit ${code}`}`);
  const result = JSON.parse(out) as { bytes: number; seconds: number; cpuSeconds: number };
  const mib = result.bytes / 1024 / 1024;
  return { mibps: mib / result.seconds, mib, clientMsPerMib: (result.cpuSeconds * 1e3) / mib };
}

async function measure(target: Target, ports: { http: number; source: number }, originPid: number | undefined): Promise<Figures> {
  const figures: Figures = { rps: NaN, p50: NaN, p99: NaN, mibps1m: NaN, tunnelMibps: NaN, cpuPerRequestUs: NaN, cpuPerMibMs: NaN, cpuPerTunnelMibMs: NaN, clientPerTunnelMibMs: NaN, sourcePerTunnelMibMs: NaN };
  if (LOADS.has('1k') && target.tunnelOnly !== true) {
    const cpu = cpuSeconds(target.pid);
    const small = await cannon(target, `http://127.0.0.1:${ports.http}/1k`, 50);
    if (small.non2xx > 0 || small.errors > 0) throw new Error(`${target.name}: ${small.non2xx} non-2xx, ${small.errors} errors on 1 KiB`);
    figures.cpuPerRequestUs = ((cpuSeconds(target.pid) - cpu) / small.requests.total) * 1e6;
    figures.rps = small.requests.average;
    figures.p50 = small.latency.p50;
    figures.p99 = small.latency.p99;
  }
  if (LOADS.has('1m') && target.tunnelOnly !== true) {
    const cpu = cpuSeconds(target.pid);
    const large = await cannon(target, `http://127.0.0.1:${ports.http}/1m`, 10);
    if (large.non2xx > 0 || large.errors > 0) throw new Error(`${target.name}: ${large.non2xx} non-2xx, ${large.errors} errors on 1 MiB`);
    figures.cpuPerMibMs = ((cpuSeconds(target.pid) - cpu) / (large.throughput.total / 1024 / 1024)) * 1e3;
    figures.mibps1m = large.throughput.average / 1024 / 1024;
  }
  if (LOADS.has('tunnel')) {
    // Source (origin process) and sink (this process) on core 0, the proxy alone on core 1: see the header.
    await onCore0([originPid, process.pid], async () => {
      const cpu = cpuSeconds(target.pid);
      const sourceCpu = cpuSeconds(originPid);
      const tunnel = await tunnelRate(target, ports.source);
      figures.sourcePerTunnelMibMs = ((cpuSeconds(originPid) - sourceCpu) / tunnel.mib) * 1e3;
      figures.cpuPerTunnelMibMs = ((cpuSeconds(target.pid) - cpu) / tunnel.mib) * 1e3;
      figures.tunnelMibps = tunnel.mibps;
      figures.clientPerTunnelMibMs = tunnel.clientMsPerMib;
    });
  }
  return figures;
}

/** One interleaved pair of windows: each proxy's requests per second and CPU µs per request, alone on core 1. */
interface InterleavedPair {
  readonly rps: readonly [number, number];
  readonly cpuPerRequestUs: readonly [number, number];
  /** Share of core 1 each used while it was loaded (about 1 when saturated). */
  readonly coreUse: readonly [number, number];
}

/**
 * The 1 KiB load through two proxies, each alone on core 1 in turn, window after window, by one
 * lean load generator on core 0 (bench/lib/keepalive-load.ts, 50 connections per proxy, kept open
 * throughout and parked while the other proxy is loaded). Windows go A B B A, A B B A, ... and each
 * window is paired with its neighbour, so a drift of the machine's state hits both alike: measured
 * one after the other in rounds of several seconds, Squid's own CPU per request moved by a quarter
 * from one window to the next on these shared machines.
 */
async function interleaved(pair: readonly [Target, Target], httpPort: number, pairs: number): Promise<InterleavedPair[]> {
  const seconds = Math.max(1, Math.min(2, SECONDS));
  const options: LoadOptions = {
    ports: pair.map((t) => t.port as number),
    connections: 50,
    request: `GET http://127.0.0.1:${httpPort}/1k HTTP/1.1\r\nHost: 127.0.0.1:${httpPort}\r\nUser-Agent: leeway-bench\r\n\r\n`,
    maxSeconds: (2 * pairs + 4) * (seconds + 1) + 30,
  };
  const loader = startLoadGenerator(options);
  const ask = loader.ask;
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
  /** Load proxy `i` alone for a window; its rate, CPU per request and use of the core. */
  const window = async (i: 0 | 1): Promise<{ rps: number; cpu: number; use: number }> => {
    const select: LoadSelect = { active: [i] };
    await ask(select);
    // Let the other proxy's last exchanges finish and this one's connections fill.
    await sleep(200);
    const target = pair[i];
    const before = { counts: await ask<LoadCounts>('count'), cpu: cpuSeconds(target.pid), at: performance.now() };
    await sleep(seconds * 1000);
    const after = { counts: await ask<LoadCounts>('count'), cpu: cpuSeconds(target.pid), at: performance.now() };
    const failed = (after.counts.failed[i] ?? 0) - (before.counts.failed[i] ?? 0);
    if (failed > 0) throw new Error(`${target.name}: ${failed} failed exchanges`);
    const done = (after.counts.ok[i] ?? 0) - (before.counts.ok[i] ?? 0);
    const elapsed = (after.at - before.at) / 1000;
    return { rps: done / elapsed, cpu: ((after.cpu - before.cpu) / done) * 1e6, use: (after.cpu - before.cpu) / elapsed };
  };
  const out: InterleavedPair[] = [];
  try {
    // Warm-up, not kept: JIT, keep-alive connections to the origin.
    await window(0);
    await window(1);
    for (let p = 0; p < pairs; p += 1) {
      const order: readonly (0 | 1)[] = p % 2 === 0 ? [0, 1] : [1, 0];
      const first = await window(order[0] as 0 | 1);
      const second = await window(order[1] as 0 | 1);
      const [a, b] = p % 2 === 0 ? [first, second] : [second, first];
      out.push({ rps: [a.rps, b.rps], cpuPerRequestUs: [a.cpu, b.cpu], coreUse: [a.use, b.use] });
    }
  } finally {
    loader.stop();
  }
  return out;
}

/**
 * The tunnel load interleaved the same way: direct, then each relay, then back (A B C, C B A,
 * ...), 2 s each, the source and the client on core 0 and each relay alone on core 1. Each
 * group's ratios to its own direct window; in rounds, a relay's figure and direct's came from
 * windows seconds apart, and direct alone moved between 865 and 1,264 MiB/s from run to run.
 */
async function interleavedTunnels(direct: Target, relays: readonly Target[], sourcePort: number, groups: number, originPid: number | undefined): Promise<number[][]> {
  const seconds = Math.max(1, Math.min(2, SECONDS));
  const out: number[][] = relays.map(() => []);
  const all = [direct, ...relays];
  await onCore0([originPid, process.pid], async () => {
    for (let g = 0; g < groups; g += 1) {
      const order = g % 2 === 0 ? all : [...all].reverse();
      const rate = new Map<Target, number>();
      for (const target of order) rate.set(target, (await tunnelRate(target, sourcePort, seconds)).mibps);
      relays.forEach((relay, i) => out[i]?.push((rate.get(relay) ?? NaN) / (rate.get(direct) ?? NaN)));
    }
  });
  return out;
}

async function startSquid(dir: string, ports: { http: number; source: number }): Promise<{ port: number; child: ChildProcess } | undefined> {
  if (!existsSync('/usr/sbin/squid')) return undefined;
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  await chmod(dir, 0o777);
  const conf = join(dir, 'squid.conf');
  await writeFile(
    conf,
    [
      `http_port 127.0.0.1:${port}`,
      `pid_filename ${join(dir, 'squid.pid')}`,
      `cache_log ${join(dir, 'cache.log')}`,
      `coredump_dir ${dir}`,
      'access_log none',
      'cache deny all',
      'cache_mem 0 MB',
      'shutdown_lifetime 0 seconds',
      'acl bench_clients src 127.0.0.1/32',
      `acl SSL_ports port ${ports.source}`,
      'acl CONNECT method CONNECT',
      'http_access deny CONNECT !SSL_ports',
      'http_access allow bench_clients',
      'http_access deny all',
      'forwarded_for delete',
    ].join('\n'),
  );
  const child = spawn('/usr/bin/taskset', ['-c', '1', '/usr/sbin/squid', '-N', '-f', conf], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (up) return { port, child };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  return undefined;
}


export async function run(): Promise<void> {
  // The load generator is this process: all its threads join the origin on core 0.
  if (PIN_LOAD && existsSync('/usr/bin/taskset')) spawnSync('/usr/bin/taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  const dir = await mkdtemp(join(tmpdir(), 'leeway-bench-'));
  const children: ChildProcess[] = [];
  try {
    const origin = spawnRole(['--import', 'tsx', here, '--role', 'origin'], false);
    children.push(origin);
    const ports = (await firstJsonLine(origin, (line) => typeof line.http === 'number')) as unknown as { http: number; source: number };

    const policies = join(dir, 'policies');
    await writeFile(join(dir, 'placeholder'), '');
    await import('node:fs/promises').then((fs) => fs.mkdir(policies));
    await writeFile(
      join(policies, 'settings.yaml'),
      `settings:\n  timeZone: UTC\n  accessLog: aggregate-only\n  interception: { enabled: false }\n  proxy:\n    clients: [127.0.0.0/8]\n    connectPorts: [${ports.source}]\n    egress: { allow: [127.0.0.0/8] }\n`,
    );
    await writeFile(join(policies, 'rules.yaml'), `rules: []\ndefault:\n  description: Everything is allowed.\n  action: allow\n`);
    const leewayChild = spawnRole([...leewayEntry('cli'), 'start', '--policies', policies, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], true);
    children.push(leewayChild);
    const listening = await firstJsonLine(leewayChild, (line) => line.msg === 'leeway listening');
    const leewayPort = Number(String(listening.proxy).split(':').at(-1));

    // The same proxy with interception available: a tunnel it does not intercept is peeked first.
    const peekingPolicies = join(dir, 'peeking-policies');
    await import('node:fs/promises').then((fs) => fs.mkdir(peekingPolicies));
    const { certPath, keyPath } = await writeCa(join(dir, 'certs'), generateCa({ name: 'Bench Leeway CA' }));
    await writeFile(
      join(peekingPolicies, 'settings.yaml'),
      `settings:\n  timeZone: UTC\n  accessLog: aggregate-only\n  interception: { enabled: true }\n  tls: { caCert: ${JSON.stringify(certPath)}, caKey: ${JSON.stringify(keyPath)} }\n  proxy:\n    clients: [127.0.0.0/8]\n    connectPorts: [${ports.source}]\n    egress: { allow: [127.0.0.0/8] }\n    hosts: { source.test: 127.0.0.1 }\n`,
    );
    await writeFile(join(peekingPolicies, 'rules.yaml'), `rules: []\ndefault:\n  description: Everything is allowed.\n  action: allow\n`);
    const peekingChild = spawnRole([...leewayEntry('cli'), 'start', '--policies', peekingPolicies, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], true);
    children.push(peekingChild);
    const peekingListening = await firstJsonLine(peekingChild, (line) => line.msg === 'leeway listening');
    const peekingPort = Number(String(peekingListening.proxy).split(':').at(-1));

    const core = spawnRole(['--import', 'tsx', here, '--role', 'core', policies], true);
    children.push(core);
    const corePort = Number((await firstJsonLine(core, (line) => typeof line.port === 'number')).port);

    const naive = spawnRole(['--import', 'tsx', here, '--role', 'naive'], true);
    children.push(naive);
    const naivePort = Number((await firstJsonLine(naive, (line) => typeof line.port === 'number')).port);

    const squid = await startSquid(dir, ports);
    if (squid !== undefined) children.push(squid.child);

    const targets: Target[] = [
      { name: 'direct', port: undefined, pid: undefined },
      { name: 'leeway', port: leewayPort, pid: leewayChild.pid },
      ...(LOADS.has('tunnel') ? [{ name: 'leeway, peeking (tunnel)', port: peekingPort, pid: peekingChild.pid, connectHost: 'source.test', tunnelOnly: true }] : []),
      { name: 'leeway core (no metrics)', port: corePort, pid: core.pid },
      { name: 'http-proxy (keep-alive)', port: naivePort, pid: naive.pid },
      ...(squid === undefined ? [] : [{ name: 'squid', port: squid.port, pid: squid.child.pid }]),
    ];
    // BENCH_TARGETS=leeway,squid keeps only the named targets (direct always runs: it is the baseline).
    const only = process.env.BENCH_TARGETS?.split(',');
    if (only !== undefined) targets.splice(0, targets.length, ...targets.filter((t) => t.name === 'direct' || only.some((name) => t.name.startsWith(name))));
    // A warm-up of each target and load kind, not kept: Leeway's code is compiled as it runs, and
    // a fresh process's first seconds ran at 137 µs per 1 KiB request where the same build later
    // took 93-110 (in a one-round run Leeway was measured cold; "leeway, peeking" only ever
    // relays tunnels, cold too). Squid and the others warm up alike.
    for (const target of targets) {
      if (target.tunnelOnly !== true && (LOADS.has('1k') || LOADS.has('1m'))) await cannon(target, `http://127.0.0.1:${ports.http}/1k`, 50, WARM_UP_SECONDS);
      if (LOADS.has('tunnel')) await tunnelRate(target, ports.source, WARM_UP_SECONDS);
    }
    const results = new Map<string, Figures[]>();
    for (let round = 0; round < ROUNDS; round++) {
      // Each round starts one target further on, so no proxy always runs right after direct (or
      // any other): a target's place in the order must not decide its figure.
      for (let i = 0; i < targets.length; i++) {
        const target = targets[(i + round) % targets.length] as Target;
        const figures = await measure(target, ports, origin.pid);
        results.set(target.name, [...(results.get(target.name) ?? []), figures]);
        if (VERBOSE) {
          const shown = (value: number, digits: number): string => (Number.isNaN(value) ? '-' : value.toFixed(digits));
          console.log(`  round ${round + 1}, ${target.name}: 1 KiB ${shown(figures.rps, 0)} req/s at ${shown(figures.cpuPerRequestUs, 0)} µs; 1 MiB ${shown(figures.mibps1m, 0)} MiB/s at ${shown(figures.cpuPerMibMs, 2)} ms/MiB; tunnel ${shown(figures.tunnelMibps, 0)} MiB/s`);
        }
      }
    }
    const med = (name: string): Figures | undefined => {
      const list = results.get(name);
      if (list === undefined) return undefined;
      return {
        rps: median(list.map((f) => f.rps)),
        p50: median(list.map((f) => f.p50)),
        p99: median(list.map((f) => f.p99)),
        mibps1m: median(list.map((f) => f.mibps1m)),
        tunnelMibps: median(list.map((f) => f.tunnelMibps)),
        cpuPerRequestUs: median(list.map((f) => f.cpuPerRequestUs)),
        cpuPerMibMs: median(list.map((f) => f.cpuPerMibMs)),
        cpuPerTunnelMibMs: median(list.map((f) => f.cpuPerTunnelMibMs)),
        clientPerTunnelMibMs: median(list.map((f) => f.clientPerTunnelMibMs)),
        sourcePerTunnelMibMs: median(list.map((f) => f.sourcePerTunnelMibMs)),
      };
    };
    const direct = med('direct') as Figures;
    const squidFigures = med('squid');
    const ratio = (value: number, base: number | undefined): string => (base === undefined || base === 0 ? '   -' : (value / base).toFixed(2));
    console.log(`forwarding: ${SECONDS} s per load, ${ROUNDS} round(s), proxies pinned to core 1${PIN_LOAD ? ', origin and load on core 0' : ''}${squid === undefined ? ', squid not installed' : ''}; load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores`);
    console.log('target                    1KiB req/s  p50 ms  p99 ms  ×direct  ×squid | 1MiB MiB/s  ×direct  ×squid | tunnel MiB/s  ×direct  ×squid');
    for (const target of targets) {
      const f = med(target.name) as Figures;
      console.log(
        `${target.name.padEnd(24)}  ${f.rps.toFixed(0).padStart(10)}  ${f.p50.toFixed(1).padStart(6)}  ${f.p99.toFixed(1).padStart(6)}  ${ratio(f.rps, direct.rps).padStart(7)}  ${ratio(f.rps, squidFigures?.rps).padStart(6)} | ${f.mibps1m.toFixed(0).padStart(10)}  ${ratio(f.mibps1m, direct.mibps1m).padStart(7)}  ${ratio(f.mibps1m, squidFigures?.mibps1m).padStart(6)} | ${f.tunnelMibps.toFixed(0).padStart(12)}  ${ratio(f.tunnelMibps, direct.tunnelMibps).padStart(7)}  ${ratio(f.tunnelMibps, squidFigures?.tunnelMibps).padStart(6)}`,
      );
    }
    // CPU per unit of work of each proxy process: what the proxy costs, whatever else the machine runs.
    console.log('proxy CPU cost (lower is better)  µs per 1KiB req  ×squid | ms per MiB (1MiB)  ×squid | ms per MiB (tunnel)  ×squid');
    const squidCpu = med('squid');
    for (const target of targets.filter((t) => t.pid !== undefined)) {
      const f = med(target.name) as Figures;
      console.log(
        `${target.name.padEnd(33)}  ${f.cpuPerRequestUs.toFixed(0).padStart(15)}  ${ratio(f.cpuPerRequestUs, squidCpu?.cpuPerRequestUs).padStart(6)} | ${f.cpuPerMibMs.toFixed(2).padStart(17)}  ${ratio(f.cpuPerMibMs, squidCpu?.cpuPerMibMs).padStart(6)} | ${f.cpuPerTunnelMibMs.toFixed(2).padStart(19)}  ${ratio(f.cpuPerTunnelMibMs, squidCpu?.cpuPerTunnelMibMs).padStart(6)}`,
      );
    }
    if (LOADS.has('tunnel')) {
      const endpoints = targets.map((t) => {
        const f = med(t.name) as Figures;
        return `${t.name} ${f.clientPerTunnelMibMs.toFixed(2)} + ${f.sourcePerTunnelMibMs.toFixed(2)}`;
      });
      console.log(`tunnel endpoints' CPU on core 0, client + source, ms per MiB: ${endpoints.join(', ')}`);
    }
    const leewayTarget = targets.find((t) => t.name === 'leeway');
    const squidTarget = targets.find((t) => t.name === 'squid');
    if (LOADS.has('1k') && leewayTarget !== undefined && squidTarget !== undefined && INTERLEAVED_PAIRS > 0) {
      // The origin joins the load generator on core 0 (as for tunnels): each proxy alone on core 1.
      const pairs = await onCore0([origin.pid], () => interleaved([leewayTarget, squidTarget], ports.http, INTERLEAVED_PAIRS));
      const rate = pairs.map((w) => w.rps[0] / w.rps[1]);
      const cost = pairs.map((w) => w.cpuPerRequestUs[0] / w.cpuPerRequestUs[1]);
      const spread = (values: number[]): string => `×${median(values).toFixed(2)} (IQR ${percentile(values, 25).toFixed(2)}-${percentile(values, 75).toFixed(2)})`;
      console.log(
        `interleaved, 1 KiB: leeway and squid each alone on core 1 in turn, ${pairs.length} pairs of ${Math.max(1, Math.min(2, SECONDS))} s windows (A B B A ...), ` +
          `one lean load generator on core 0, 50 connections each; core 1 used ${median(pairs.map((w) => w.coreUse[0])).toFixed(2)} by leeway, ${median(pairs.map((w) => w.coreUse[1])).toFixed(2)} by squid (1.00: saturated)`,
      );
      console.log(`  leeway ÷ squid, paired: req/s ${spread(rate)}; CPU per request ${spread(cost)}; pair by pair ${rate.map((r) => r.toFixed(2)).join(' ')}`);
      console.log(`  medians: leeway ${median(pairs.map((w) => w.rps[0])).toFixed(0)} req/s at ${median(pairs.map((w) => w.cpuPerRequestUs[0])).toFixed(0)} µs per request, squid ${median(pairs.map((w) => w.rps[1])).toFixed(0)} req/s at ${median(pairs.map((w) => w.cpuPerRequestUs[1])).toFixed(0)} µs`);
      console.log(`target, 1 KiB requests/s ≥ 1.0× Squid on one core: ${median(rate) >= 1 ? 'MET' : 'NOT MET'} interleaved (×${median(rate).toFixed(2)}); in rounds above ×${ratio(med('leeway')?.rps ?? NaN, squidFigures?.rps)}`);
    }
    const relays = targets.filter((t) => t.name === 'leeway' || t.name.startsWith('leeway, peeking'));
    const directTarget = targets.find((t) => t.name === 'direct');
    if (LOADS.has('tunnel') && directTarget !== undefined && relays.length > 0 && INTERLEAVED_PAIRS > 0) {
      const ratios = await interleavedTunnels(directTarget, relays, ports.source, INTERLEAVED_PAIRS, origin.pid);
      const seconds = Math.max(1, Math.min(2, SECONDS));
      console.log(`interleaved, tunnel: direct and each relay in turn (A B C, C B A ...), ${INTERLEAVED_PAIRS} groups of ${seconds} s windows, source and client on core 0, each relay alone on core 1; ratios to direct in the same group:`);
      relays.forEach((relay, i) => {
        const values = ratios[i] ?? [];
        console.log(`  ${relay.name.padEnd(26)} ×${median(values).toFixed(2)} (IQR ${percentile(values, 25).toFixed(2)}-${percentile(values, 75).toFixed(2)}); group by group ${values.map((r) => r.toFixed(2)).join(' ')}`);
      });
      const leewayTunnel = median(ratios[0] ?? []);
      console.log(`target, tunnel ≥ 0.9× direct: ${leewayTunnel >= 0.9 ? 'MET' : 'NOT MET'} interleaved (×${leewayTunnel.toFixed(2)}); in rounds above ×${ratio(med('leeway')?.tunnelMibps ?? NaN, direct.tunnelMibps)}`);
    }
  } finally {
    for (const child of children) child.kill('SIGKILL');
    spawnSync('sleep', ['0.2']);
    await rm(dir, { recursive: true, force: true });
  }
}

const role = process.argv.indexOf('--role');
if (role !== -1) {
  const name = process.argv[role + 1];
  if (name === 'origin') await originRole();
  else if (name === 'naive') await naiveRole();
  else if (name === 'core') await coreRole(process.argv[role + 2] ?? '');
} else if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run();
}
