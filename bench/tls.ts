/**
 * TLS interception costs (issue 4), measured side by side in one run:
 *  1. certificate mints per second: TBSCertificate signed by native crypto.sign vs forge's JS RSA,
 *     and a whole store mint (certificate + tls.createSecureContext);
 *  2. through a real Leeway on loopback, each on a new client connection: the first request to a
 *     new host (mint + handshakes), the same with its certificate minted beforehand (what is left
 *     is the new upstream connection, opened at the CONNECT; client, proxy and origin share this
 *     one thread here, so its handshake cannot overlap the client's), a request to a cached host,
 *     and the same request through a blind tunnel. Targets: new host <= 10 ms median; cached host
 *     <= 1.3x the blind tunnel.
 */
import https from 'node:https';
import net from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, connect as tlsConnect, type SecureContext } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import forge from 'node-forge';
import { stringify } from 'yaml';
import { createLeeway, silentLogger } from '../src/index.js';
import { caFromPem, generateCa, writeCa, type LoadedCa } from '../src/tls/ca.js';
import { CertificateStore } from '../src/tls/certificate-store.js';
import { generateLeafKey, mintLeafCertificate } from '../src/tls/leaf-certificate.js';
import { deferredInterceptor, setupInterception } from '../src/tls/interception.js';

const INTERCEPTED_HOSTS = 150;
const ROUNDS = 100;
const DEADLINE_MS = 60_000;
const CLIENT_RTT_MS = 2;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

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

async function proxyBench(dir: string): Promise<void> {
  const leewayCa = generateCa({ name: 'Bench Leeway CA' });
  const { certPath, keyPath } = await writeCa(join(dir, 'certs'), leewayCa);
  const originCa = generateCa({ name: 'Bench Origin Root' });
  const originLoaded = caFromPem(originCa.certPem, originCa.keyPem);
  await writeFile(join(dir, 'origin-roots.pem'), originCa.certPem);
  // The origin has one certificate per host, as real sites do; minted once, before timing.
  const originKey = generateLeafKey('ec');
  const originContexts = new Map<string, SecureContext>();
  const originContext = (name: string): SecureContext => {
    let context = originContexts.get(name);
    if (context === undefined) {
      context = createSecureContext({ key: originKey.privateKeyPem, cert: mintLeafCertificate({ host: name, ca: originLoaded, leafKey: originKey, now: Date.now() }).certPem });
      originContexts.set(name, context);
    }
    return context;
  };
  const interceptedHosts = Array.from({ length: INTERCEPTED_HOSTS }, (_, i) => `h${i}.inspect.test`);
  // New to the proxy's origin pool, but with the certificate minted beforehand: separates the
  // mint from the new upstream connection in a new host's time.
  const premintedHosts = Array.from({ length: INTERCEPTED_HOSTS }, (_, i) => `p${i}.inspect.test`);
  // New hosts for a client one simulated round trip away (its ClientHello sent CLIENT_RTT_MS after
  // the 200), as a browser on the LAN is: the mint, started at the CONNECT, overlaps that wait.
  const distantHosts = Array.from({ length: INTERCEPTED_HOSTS }, (_, i) => `d${i}.inspect.test`);
  const tunnelHost = 'plain.tunnel.test';
  for (const host of [...interceptedHosts, ...premintedHosts, ...distantHosts, tunnelHost]) originContext(host);
  const origin = https.createServer({ SNICallback: (name, cb) => cb(null, originContext(name)), keepAliveTimeout: 10_000 }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const originPort = (origin.address() as AddressInfo).port;

  const hosts: Record<string, string> = {};
  for (const host of [...interceptedHosts, ...premintedHosts, ...distantHosts, tunnelHost]) hosts[host] = '127.0.0.1';
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
  const interceptor = deferredInterceptor();
  const leeway = await createLeeway({ policies: policyDir, listen: '127.0.0.1:0', admin: false, interceptor });
  const tls = await setupInterception(leeway.policy.settings, { logger: silentLogger() });
  if (tls === undefined) throw new Error('interception not configured');
  interceptor.set(tls.interceptor);
  const { proxy } = await leeway.listen();
  const trust = leewayCa.certPem + originCa.certPem;
  const deadline = Date.now() + DEADLINE_MS;
  try {
    // Warm-up: JIT, the tunnel path and one intercepted host.
    for (let i = 0; i < 10; i++) await timedRequest(proxy.port, tunnelHost, originPort, trust);
    await timedRequest(proxy.port, 'h0.inspect.test', originPort, trust);
    for (const host of premintedHosts) await tls.store.secureContextFor(host);
    const mintedBefore = tls.store.minted;
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
    console.log(`through Leeway, new client connection each, ${tunnel.length} rounds (median / p90 ms):`);
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
    console.log(`  certificates minted while timed: ${tls.store.minted - mintedBefore}, cache entries: ${tls.store.size}`);
  } finally {
    await leeway.close(500);
    await new Promise<void>((resolve) => {
      origin.closeAllConnections();
      origin.close(() => resolve());
    });
  }
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
