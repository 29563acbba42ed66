/**
 * TLS interception costs (issue 4), measured side by side in one run:
 *  1. certificate mints per second: TBSCertificate signed by native crypto.sign vs forge's JS RSA,
 *     and a whole store mint (certificate + tls.createSecureContext);
 *  2. through a real Leeway on loopback, each on a new client connection: the first request to a
 *     new host (mint + handshakes), the same with its certificate minted beforehand (what is left
 *     is the new upstream connection, opened at the CONNECT), a request to a cached host, and the
 *     same request through a blind tunnel. Targets: new host <= 10 ms median; cached host <= 1.3x
 *     the blind tunnel.
 * Leeway runs in its own process pinned to core 1 (as in bench/forwarding.ts), the origin in a
 * third process (bench/lib/tls-proxy.ts has both roles), the client here: a proxy's clients and
 * origins are other machines, so its upstream handshake, started at the CONNECT, overlaps the
 * client's handshake, which it cannot when all three share one thread.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { pathToFileURL } from 'node:url';
import forge from 'node-forge';
import { stringify } from 'yaml';
import { caFromPem, generateCa, writeCa, type LoadedCa } from '../src/tls/ca.js';
import { CertificateStore } from '../src/tls/certificate-store.js';
import { generateLeafKey, mintLeafCertificate } from '../src/tls/leaf-certificate.js';
import { distIsFresh, firstJsonLine, median, percentile, repoRoot } from './lib/common.js';

const INTERCEPTED_HOSTS = 150;
const ROUNDS = 100;
const DEADLINE_MS = 60_000;
const CLIENT_RTT_MS = 2;
const helper = join(repoRoot, 'bench', 'lib', 'tls-proxy.ts');



function timeEach(count: number, fn: (i: number) => void): number[] {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    fn(i);
    times.push(performance.now() - start);
  }
  return times;
}

async function mintBench(ca: LoadedCa, caKeyPem: string): Promise<void> {
  const leafKey = generateLeafKey('ec');
  const forgeCaKey = forge.pki.privateKeyFromPem(caKeyPem);
  const now = Date.now();
  // Warm both paths (JIT, forge's lazy tables).
  for (let i = 0; i < 5; i++) {
    mintLeafCertificate({ host: `warm${i}.test`, ca, leafKey, now });
    mintLeafCertificate({ host: `warmf${i}.test`, ca, leafKey, now, forgeCaKey });
  }
  const native = timeEach(300, (i) => mintLeafCertificate({ host: `n${i}.bench.test`, ca, leafKey, now }));
  const forged = timeEach(30, (i) => mintLeafCertificate({ host: `f${i}.bench.test`, ca, leafKey, now, forgeCaKey }));
  const store = new CertificateStore({ ca, cacheSize: 1000 });
  const whole: number[] = [];
  for (let i = 0; i < 300; i++) {
    const start = performance.now();
    await store.secureContextFor(`s${i}.bench.test`);
    whole.push(performance.now() - start);
  }
  const n = median(native);
  const f = median(forged);
  const w = median(whole);
  console.log('certificate mint (median ms, mints/s on one core):');
  console.log(`  forge JS RSA signature           ${f.toFixed(2)} ms   ${(1000 / f).toFixed(0)}/s   (baseline)`);
  console.log(`  native crypto.sign               ${n.toFixed(2)} ms   ${(1000 / n).toFixed(0)}/s   ${(f / n).toFixed(1)}x faster`);
  console.log(`  store mint incl. secure context  ${w.toFixed(2)} ms   ${(1000 / w).toFixed(0)}/s   (p99 ${percentile(whole, 99).toFixed(2)} ms)`);
}

/** TLS straight to the origin (no proxy), one GET: the machine's own speed, for scale. */
function timedDirect(host: string, port: number, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const tls = tlsConnect({ host: '127.0.0.1', port, servername: host, ca, ALPNProtocols: ['http/1.1'] });
    let text = '';
    tls.setEncoding('latin1');
    tls.on('data', (c: string) => (text += c));
    tls.once('secureConnect', () => tls.write(`GET /bench HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
    tls.once('end', () => {
      tls.destroy();
      if (!text.endsWith('ok')) return reject(new Error(`unexpected answer: ${text.slice(0, 80)}`));
      resolve(performance.now() - start);
    });
    tls.once('error', reject);
  });
}

/** CONNECT through the proxy, TLS trusting `ca`, one GET with Connection: close; resolves with ms. */
function timedRequest(proxyPort: number, host: string, port: number, ca: string, clientDelayMs = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const raw = net.connect({ host: '127.0.0.1', port: proxyPort });
    raw.setNoDelay(true);
    const timer = setTimeout(() => {
      raw.destroy();
      reject(new Error(`request to ${host} timed out`));
    }, 5_000);
    raw.once('error', reject);
    raw.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
    raw.once('data', (chunk: Buffer) => {
      if (!chunk.toString('latin1').startsWith('HTTP/1.1 200')) return reject(new Error(`CONNECT refused: ${chunk.toString('latin1').split('\r\n')[0] ?? ''}`));
      if (clientDelayMs > 0) setTimeout(() => handshake(), clientDelayMs);
      else handshake();
    });
    const handshake = (): void => {
      const tls = tlsConnect({ socket: raw, servername: host, ca, ALPNProtocols: ['http/1.1'] });
      let text = '';
      tls.setEncoding('latin1');
      tls.on('data', (c: string) => (text += c));
      tls.once('secureConnect', () => tls.write(`GET /bench HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
      tls.once('end', () => {
        clearTimeout(timer);
        tls.destroy();
        if (!text.startsWith('HTTP/1.1 200') || !text.endsWith('ok')) return reject(new Error(`unexpected answer from ${host}: ${text.slice(0, 80)}`));
        resolve(performance.now() - start);
      });
      tls.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    };
  });
}

/** Start a role of bench/lib/tls-proxy.ts with an IPC channel; the proxy pinned to core 1 as in bench/forwarding.ts. */
function spawnRole(args: string[], pin: boolean): ChildProcess {
  const node = [process.execPath, '--import', 'tsx', helper, ...args];
  const [command, ...rest] = pin && existsSync('/usr/bin/taskset') ? ['/usr/bin/taskset', '-c', '1', ...node] : node;
  return spawn(command as string, rest, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
}


function ask<T>(child: ChildProcess, message: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('child did not answer in time')), 30_000);
    child.once('message', (answer) => {
      clearTimeout(timer);
      resolve(answer as T);
    });
    child.send(message as object);
  });
}

/** Leeway from dist/ when the build is up to date (see distIsFresh), else from the sources. */
function leewayFrom(): 'dist' | 'src' {
  return distIsFresh(['index', 'proxy/pipeline', 'proxy/forward', 'tls/interception', 'tls/certificate-store', 'tls/leaf-certificate']) ? 'dist' : 'src';
}

async function proxyBench(dir: string): Promise<void> {
  const leewayCa = generateCa({ name: 'Bench Leeway CA' });
  const { certPath, keyPath } = await writeCa(join(dir, 'certs'), leewayCa);
  const originCa = generateCa({ name: 'Bench Origin Root' });
  await writeFile(join(dir, 'origin-roots.pem'), originCa.certPem);
  const interceptedHosts = Array.from({ length: INTERCEPTED_HOSTS }, (_, i) => `h${i}.inspect.test`);
  // New to the proxy's origin pool, but with the certificate minted beforehand: separates the
  // mint from the new upstream connection in a new host's time.
  const premintedHosts = Array.from({ length: INTERCEPTED_HOSTS }, (_, i) => `p${i}.inspect.test`);
  // New hosts for a client one simulated round trip away (its ClientHello sent CLIENT_RTT_MS after
  // the 200), as a browser on the LAN is: the mint, started at the CONNECT, overlaps that wait.
  const distantHosts = Array.from({ length: INTERCEPTED_HOSTS }, (_, i) => `d${i}.inspect.test`);
  const tunnelHost = 'plain.tunnel.test';
  const allHosts = [...interceptedHosts, ...premintedHosts, ...distantHosts, tunnelHost];
  const children: ChildProcess[] = [];
  try {
    // The origin has one certificate per host, as real sites do; minted before it listens.
    await writeFile(join(dir, 'origin.json'), JSON.stringify({ certPem: originCa.certPem, keyPem: originCa.keyPem, hosts: allHosts }));
    const origin = spawnRole(['origin', join(dir, 'origin.json')], false);
    children.push(origin);
    const originPort = Number((await firstJsonLine(origin, (line) => typeof line.port === 'number')).port);

    const hosts: Record<string, string> = {};
    for (const host of allHosts) hosts[host] = '127.0.0.1';
    const policyDir = join(dir, 'policies');
    await mkdir(policyDir);
    await writeFile(
      join(policyDir, 'settings.yaml'),
      stringify({
        settings: {
          timeZone: 'UTC',
          accessLog: 'aggregate-only',
          interception: { enabled: true, doNotInspect: [] },
          tls: { caCert: certPath, caKey: keyPath, extraCaBundle: join(dir, 'origin-roots.pem'), certCacheSize: 1000 },
          proxy: { clients: ['127.0.0.0/8'], egress: { allow: ['127.0.0.0/8'] }, connectPorts: [originPort], hosts },
        },
      }),
    );
    await writeFile(
      join(policyDir, 'categories.yaml'),
      stringify({ categories: { inspected: { description: 'Hosts with a method rule.', domains: ['inspect.test'] }, plain: { description: 'Tunnelled.', domains: ['tunnel.test'] } } }),
    );
    await writeFile(
      join(policyDir, 'rules.yaml'),
      stringify({
        rules: [{ id: 'no-posts', description: 'No posting.', category: 'inspected', method: 'POST', path: '/groups/*', action: 'block', reason: 'Use the intranet.' }],
        default: { description: 'Everything else is allowed.', action: 'allow' },
      }),
    );
    const from = leewayFrom();
    const leeway = spawnRole(['proxy', policyDir, from], true);
    children.push(leeway);
    const proxy = { port: Number((await firstJsonLine(leeway, (line) => typeof line.port === 'number')).port) };
    await proxyRounds({ proxy, leeway, originPort, tunnelHost, premintedHosts, trust: leewayCa.certPem + originCa.certPem, from });
  } finally {
    for (const child of children) {
      child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
      clearTimeout(timer);
    }
  }
}

interface Rounds {
  proxy: { port: number };
  leeway: ChildProcess;
  originPort: number;
  tunnelHost: string;
  premintedHosts: string[];
  trust: string;
  from: 'dist' | 'src';
}

async function proxyRounds({ proxy, leeway, originPort, tunnelHost, premintedHosts, trust, from }: Rounds): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  // Warm-up: JIT, the tunnel path and one intercepted host.
  for (let i = 0; i < 10; i++) await timedRequest(proxy.port, tunnelHost, originPort, trust);
  await timedRequest(proxy.port, 'h0.inspect.test', originPort, trust);
  await ask(leeway, { premint: premintedHosts });
  const before = await ask<{ minted: number }>(leeway, { stats: true });
  const newHost: number[] = [];
  const preminted: number[] = [];
  const distantNew: number[] = [];
  const distantCached: number[] = [];
  const cached: number[] = [];
  const tunnel: number[] = [];
  const direct: number[] = [];
  // Interleaved so drift in machine load hits all three alike.
  for (let i = 1; i < Math.min(ROUNDS + 1, INTERCEPTED_HOSTS) && Date.now() < deadline; i++) {
    newHost.push(await timedRequest(proxy.port, `h${i}.inspect.test`, originPort, trust));
    preminted.push(await timedRequest(proxy.port, `p${i}.inspect.test`, originPort, trust));
    distantNew.push(await timedRequest(proxy.port, `d${i}.inspect.test`, originPort, trust, CLIENT_RTT_MS));
    distantCached.push(await timedRequest(proxy.port, 'h0.inspect.test', originPort, trust, CLIENT_RTT_MS));
    cached.push(await timedRequest(proxy.port, 'h0.inspect.test', originPort, trust));
    tunnel.push(await timedRequest(proxy.port, tunnelHost, originPort, trust));
    direct.push(await timedDirect(tunnelHost, originPort, trust));
  }
  const t = median(tunnel);
  const c = median(cached);
  const n = median(newHost);
  console.log(`through Leeway (own process on core 1, from ${from}/; client here, origin in a third process), new client connection each, ${tunnel.length} rounds (median / p90 ms):`);
  console.log(`  (direct to the origin, no proxy  ${median(direct).toFixed(2)} / ${percentile(direct, 90).toFixed(2)}   for scale)`);
  console.log(`  blind tunnel                      ${t.toFixed(2)} / ${percentile(tunnel, 90).toFixed(2)}   (baseline)`);
  console.log(`  intercepted, cached host          ${c.toFixed(2)} / ${percentile(cached, 90).toFixed(2)}   ${(c / t).toFixed(2)}x tunnel   (target <= 1.3x)`);
  console.log(`  intercepted, new host (mint)      ${n.toFixed(2)} / ${percentile(newHost, 90).toFixed(2)}   ${(n / t).toFixed(2)}x tunnel   (target <= 10 ms)`);
  const p = median(preminted);
  console.log(`  intercepted, new host, cert ready ${p.toFixed(2)} / ${percentile(preminted, 90).toFixed(2)}   ${(p / t).toFixed(2)}x tunnel   (new upstream connection, no mint)`);
  const dn = median(distantNew);
  const dc = median(distantCached);
  console.log(`client ${CLIENT_RTT_MS} ms away (ClientHello sent ${CLIENT_RTT_MS} ms after the 200):`);
  console.log(`  intercepted, cached host          ${dc.toFixed(2)} / ${percentile(distantCached, 90).toFixed(2)}   (baseline)`);
  console.log(`  intercepted, new host (mint)      ${dn.toFixed(2)} / ${percentile(distantNew, 90).toFixed(2)}   +${(dn - dc).toFixed(2)} ms over cached (on loopback: +${(n - c).toFixed(2)} ms)`);
  const after = await ask<{ minted: number; size: number }>(leeway, { stats: true });
  console.log(`  certificates minted while timed: ${after.minted - before.minted}, cache entries: ${after.size}`);
}

export async function run(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'leeway-bench-tls-'));
  try {
    const ca = generateCa({ name: 'Bench Mint CA' });
    await mintBench(caFromPem(ca.certPem, ca.keyPem), ca.keyPem);
    await proxyBench(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run();
}
