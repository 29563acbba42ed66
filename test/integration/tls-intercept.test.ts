/**
 * TLS interception end to end in one process (issue 4): Leeway with a test CA, local HTTPS origins
 * whose certificates come from a separate test "public" CA trusted through settings.tls.extraCaBundle.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createSecureContext, type PeerCertificate, type SecureContext, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log/logger.js';
import { caFromPem, generateCa, writeCa } from '../../src/tls/ca.js';
import { generateLeafKey, mintLeafCertificate } from '../../src/tls/leaf-certificate.js';
import { deferredInterceptor, registerCaRoutes, setupInterception, type Interception } from '../../src/tls/interception.js';
import { STANDARD_CATEGORIES, STANDARD_RULES, TEST_HOSTS, writeTestPolicy, type TestPolicy } from '../helpers/policy.js';
import { startLeeway, type RunningLeeway } from '../helpers/proxy.js';
import { tokenIn } from '../helpers/via-proxy.js';

const DAY_MS = 86_400_000;
// fresh.test and vault.test are each used by one test only: it counts their origin connections.
const EXTRA_HOSTS = ['inspected.test', 'bank.test', 'expired.test', 'wronghost.test', 'pinned.test', 'fresh.test', 'vault.test'];

let dir: string;
let policy: TestPolicy;
let proxy: RunningLeeway;
let interception: Interception;
let origin: https.Server;
let originPort: number;
/** An allowed CONNECT port where nothing listens. */
let deadPort: number;
let leewayCaPem: string;
/** TLS server names of the connections the origin accepted, in order. */
const originConnections: string[] = [];
let originCaPem: string;
const logLines: Record<string, unknown>[] = [];

/** The "public" CA of the test origins, and a TLS context per origin host name. */
function originContexts(): (servername: string) => SecureContext {
  const now = Date.now();
  const originCa = generateCa({ name: 'Test Public Root', now: new Date(now - 400 * DAY_MS) });
  originCaPem = originCa.certPem;
  const ca = caFromPem(originCa.certPem, originCa.keyPem);
  const key = generateLeafKey('ec');
  const contexts = new Map<string, SecureContext>();
  const contextFor = (name: string, certNow = now, certName = name): SecureContext =>
    createSecureContext({ key: key.privateKeyPem, cert: mintLeafCertificate({ host: certName, ca, leafKey: key, now: certNow }).certPem });
  return (servername) => {
    let context = contexts.get(servername);
    if (context === undefined) {
      if (servername === 'expired.test') context = contextFor(servername, now - 100 * DAY_MS);
      else if (servername === 'wronghost.test') context = contextFor(servername, now, 'someone-else.test');
      else context = contextFor(servername);
      contexts.set(servername, context);
    }
    return context;
  };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leeway-tls-'));
  const leewayCa = generateCa({ name: 'Leeway Test Interception CA' });
  leewayCaPem = leewayCa.certPem;
  const { certPath, keyPath } = await writeCa(join(dir, 'certs'), leewayCa);
  const contextFor = originContexts();
  await writeFile(join(dir, 'origin-roots.pem'), originCaPem);

  // Clients always send SNI to the origin (the proxy names the host), so no default certificate.
  origin = https.createServer({ SNICallback: (name, cb) => cb(null, contextFor(name)) }, (req, res) => {
    if (req.url === '/echo' && req.method === 'POST') {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => res.end(`posted: ${body}`));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`secure origin ${req.headers.host ?? ''} ${req.url ?? ''}`);
  });
  origin.on('secureConnection', (socket: TLSSocket) => originConnections.push(typeof socket.servername === 'string' ? socket.servername : ''));
  const wss = new WebSocketServer({ server: origin });
  wss.on('connection', (socket) => socket.on('message', (data) => socket.send(`echo: ${String(data)}`)));
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  originPort = (origin.address() as AddressInfo).port;

  const closed = net.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  deadPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));

  const hosts: Record<string, string> = {};
  for (const host of [...TEST_HOSTS, ...EXTRA_HOSTS]) hosts[host] = '127.0.0.1';
  policy = await writeTestPolicy({
    proxy: { connectPorts: [443, originPort, deadPort], hosts },
    settings: {
      interception: { enabled: true, doNotInspect: ['bank'] },
      tls: { caCert: certPath, caKey: keyPath, extraCaBundle: join(dir, 'origin-roots.pem'), certCacheSize: 50 },
    },
    categories: {
      ...STANDARD_CATEGORIES,
      inspected: { description: 'Hosts with a method rule.', domains: ['inspected.test', 'expired.test', 'wronghost.test', 'pinned.test', 'fresh.test'] },
      bank: { description: 'A bank, never inspected.', domains: ['bank.test', 'vault.test'] },
    },
    rules: [
      ...STANDARD_RULES,
      // A method rule: every request on these hosts needs inspection, GETs pass.
      { id: 'no-group-posts', description: 'Post to groups on the intranet.', category: ['inspected', 'bank'], method: 'POST', path: '/groups/*', action: 'block', reason: 'Use the intranet.' },
    ],
  });
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) } });
  const deferred = deferredInterceptor();
  proxy = await startLeeway({ policies: policy.dir, interceptor: deferred, logger });
  const setUp = await setupInterception(proxy.leeway.policy.settings, { logger });
  if (setUp === undefined) throw new Error('interception not configured');
  interception = setUp;
  deferred.set(interception.interceptor);
  registerCaRoutes(proxy.leeway, interception.ca.certPem);
});

afterAll(async () => {
  await proxy?.close();
  await new Promise<void>((resolve) => (origin ? origin.close(() => resolve()) : resolve()));
  await policy?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

/** CONNECT through the proxy, then TLS with `ca` trusted. */
async function tunnel(host: string, ca: string, port = originPort, servername = net.isIP(host) === 0 ? host : undefined): Promise<{ tls: TLSSocket; peer: PeerCertificate }> {
  const raw = net.connect({ host: '127.0.0.1', port: proxy.port });
  await new Promise<void>((resolve, reject) => {
    raw.once('connect', resolve);
    raw.once('error', reject);
  });
  raw.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
  const answer = await new Promise<string>((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n\r\n')) {
        raw.off('data', onData);
        resolve(text);
      }
    };
    raw.on('data', onData);
    raw.once('error', reject);
  });
  if (!answer.startsWith('HTTP/1.1 200')) throw Object.assign(new Error(`CONNECT refused: ${answer.split('\r\n')[0] ?? ''}`), { answer });
  const tls = tlsConnect({ socket: raw, servername, ca, ALPNProtocols: ['http/1.1'] });
  await new Promise<void>((resolve, reject) => {
    tls.once('secureConnect', resolve);
    tls.once('error', reject);
  });
  return { tls, peer: tls.getPeerCertificate(true) };
}

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly peer: PeerCertificate;
}

/** `connectTo` names the CONNECT target when it is not `host` (which is then the SNI and Host). */
async function httpsVia(host: string, path: string, options: { method?: string; body?: string; headers?: Record<string, string>; ca?: string; connectTo?: string } = {}): Promise<Reply> {
  const { tls, peer } = await tunnel(options.connectTo ?? host, options.ca ?? leewayCaPem, originPort, host);
  try {
    return await new Promise<Reply>((resolve, reject) => {
      const req = http.request(
        { createConnection: () => tls, host, port: originPort, path, method: options.method ?? 'GET', headers: { host: `${host}:${originPort}`, ...options.headers } },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, peer }));
        },
      );
      req.on('error', reject);
      req.end(options.body);
    });
  } finally {
    tls.destroy();
  }
}


describe('TLS interception', () => {
  it('an intercepted request reaches the TLS origin; the client sees a certificate for the host issued by the Leeway CA', async () => {
    const reply = await httpsVia('inspected.test', '/page?q=1');
    expect(reply.status).toBe(200);
    expect(reply.body).toBe(`secure origin inspected.test:${originPort} /page?q=1`);
    expect(reply.peer.subjectaltname).toBe('DNS:inspected.test');
    expect(reply.peer.issuer.CN).toBe('Leeway Test Interception CA');
    expect(interception.store.minted).toBeGreaterThanOrEqual(1);
  });

  it('a do-not-inspect host is tunnelled: the client sees the origin’s own certificate', async () => {
    // Trusting only the origin's CA: the handshake would fail had Leeway intercepted.
    const reply = await httpsVia('bank.test', '/account', { ca: originCaPem });
    expect(reply.status).toBe(200);
    expect(reply.body).toBe(`secure origin bank.test:${originPort} /account`);
    expect(reply.peer.issuer.CN).toBe('Test Public Root');
  });

  it.each([
    { host: 'expired.test', problem: /expired/i },
    { host: 'wronghost.test', problem: /another name|different host/i },
  ])('an origin certificate problem ($host) gets an error page naming it, never a silent pass', async ({ host, problem }) => {
    const reply = await httpsVia(host, '/');
    expect(reply.status).toBe(502);
    expect(reply.body).toMatch(problem);
    expect(reply.body).not.toContain('secure origin');
    expect(reply.peer.issuer.CN).toBe('Leeway Test Interception CA');
  });

  it('over HTTPS: the coach page, then Continue, then the origin', async () => {
    const page = await httpsVia('social.test', '/feed');
    expect(page.status).toBe(403);
    expect(page.body).toContain('Social test site: mind the time.');
    expect(page.peer.subjectaltname).toBe('DNS:social.test');
    const answer = await httpsVia('social.test', '/.leeway/continue', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: tokenIn(page.body), choice: 'continue' }).toString(),
    });
    expect(answer.status).toBe(303);
    expect(answer.headers.location).toBe(`https://social.test:${originPort}/feed`);
    // Acknowledged: the next CONNECT needs no page and is a blind tunnel to the origin.
    const after = await httpsVia('social.test', '/feed', { ca: leewayCaPem + originCaPem });
    expect(after.status).toBe(200);
    expect(after.body).toBe(`secure origin social.test:${originPort} /feed`);
  });

  describe('decided on the ClientHello’s SNI where it differs from the CONNECT host', () => {
    it('CONNECT to an IP with the SNI of a do-not-inspect host is tunnelled blind: the client sees the origin’s own certificate', async () => {
      const before = interception.store.minted;
      // Trusting only the origin's CA: the handshake would fail had Leeway intercepted.
      const reply = await httpsVia('bank.test', '/statement', { connectTo: '127.0.0.1', ca: originCaPem });
      expect(reply.status).toBe(200);
      expect(reply.body).toBe(`secure origin bank.test:${originPort} /statement`);
      expect(reply.peer.issuer.CN).toBe('Test Public Root');
      expect(reply.peer.subjectaltname).toBe('DNS:bank.test');
      expect(interception.store.minted).toBe(before);
    });

    it('CONNECT to an IP with the SNI of a coached host gets the page under a certificate for that name', async () => {
      // suggest.test: coach.test shares the site that an earlier test acknowledged with Continue.
      const page = await httpsVia('suggest.test', '/forum', { connectTo: '127.0.0.1' });
      expect(page.status).toBe(403);
      expect(page.body).toContain('Use the internal forum.');
      expect(page.peer.subjectaltname).toBe('DNS:suggest.test');
      expect(page.peer.issuer.CN).toBe('Leeway Test Interception CA');
    });

    it('CONNECT to an inspected host with the SNI of a do-not-inspect host is not inspected', async () => {
      const reply = await httpsVia('bank.test', '/fronted', { connectTo: 'inspected.test', ca: originCaPem });
      expect(reply.status).toBe(200);
      expect(reply.peer.issuer.CN).toBe('Test Public Root');
    });

    it('CONNECT to an allowed host name with the SNI of another (domain fronting) is decided on the SNI: its readonly rule applies', async () => {
      // bank.test alone would be a blind tunnel; the client really asks for readonly.test.
      const reply = await httpsVia('readonly.test', '/echo', { connectTo: 'bank.test', method: 'POST', body: 'x=1', headers: { 'content-type': 'text/plain' } });
      expect(reply.peer.subjectaltname).toBe('DNS:readonly.test');
      expect(reply.peer.issuer.CN).toBe('Leeway Test Interception CA');
      expect(reply.status).toBe(403);
      expect(reply.body).toContain('Read-only test site.');
    });

    it('CONNECT to an allowed host name with the SNI of a blocked host gets the block page for that name', async () => {
      const page = await httpsVia('block.test', '/', { connectTo: 'origin.test' });
      expect(page.peer.subjectaltname).toBe('DNS:block.test');
      expect(page.status).toBe(403);
      expect(page.body).toContain('Known bad test site.');
    });

    it('CONNECT to an IP with no SNI and an allowed decision is tunnelled, not intercepted', async () => {
      // No SNI: the origin has no default certificate and fails the handshake, which the client must see from the origin.
      await expect(tunnel('127.0.0.1', originCaPem, originPort, undefined)).rejects.toThrow();
      expect(interception.interceptor.handshakeFailuresByHost().find((h) => h.host === '127.0.0.1')).toBeUndefined();
    });

    it('an unreachable origin of a tunnelled CONNECT still gets a 502 before any 200', async () => {
      await expect(tunnel('127.0.0.1', originCaPem, deadPort, 'bank.test')).rejects.toMatchObject({ answer: expect.stringMatching(/^HTTP\/1\.1 502/) });
    });
  });

  it('readonly refuses an HTTPS POST and lets a GET through', async () => {
    const get = await httpsVia('readonly.test', '/wiki');
    expect(get.status).toBe(200);
    const post = await httpsVia('readonly.test', '/echo', { method: 'POST', body: 'x=1', headers: { 'content-type': 'text/plain' } });
    expect(post.status).toBe(403);
    expect(post.headers['x-leeway-reason']).toBe('readonly; rule=readonly-wiki');
    expect(post.body).not.toContain('posted:');
  });

  it('a method and path rule applies inside TLS', async () => {
    const post = await httpsVia('inspected.test', '/groups/42', { method: 'POST', body: 'hello' });
    expect(post.status).toBe(403);
    expect(post.body).toContain('Use the intranet.');
  });

  it('a WebSocket inside intercepted TLS', async () => {
    const { tls, peer } = await tunnel('inspected.test', leewayCaPem);
    expect(peer.issuer.CN).toBe('Leeway Test Interception CA');
    const ws = new WebSocket(`wss://inspected.test:${originPort}/socket`, { createConnection: () => tls });
    try {
      const message = await new Promise<string>((resolve, reject) => {
        ws.once('open', () => ws.send('ping'));
        ws.once('message', (data) => resolve(String(data)));
        ws.once('error', reject);
      });
      expect(message).toBe('echo: ping');
    } finally {
      ws.terminate();
    }
  });

  it('a client that refuses the certificate after the handshake (a pinned app) is counted per host and logged without its address', async () => {
    const hangUps = (): number => interception.interceptor.handshakeFailures.closed + interception.interceptor.handshakeFailures['closed-after-handshake'];
    const before = hangUps();
    // Trusting a CA other than Leeway's: Node, like OkHttp's pinning, checks after the handshake and hangs up.
    await expect(tunnel('pinned.test', originCaPem)).rejects.toThrow(/unable to verify/);
    // Depending on timing the proxy sees the hang-up just before or just after the client's Finished.
    await waitFor(() => hangUps() > before);
    expect(interception.interceptor.handshakeFailuresByHost()).toContainEqual({ host: 'pinned.test', failures: 1 });
    const line = logLines.find((l) => l.host === 'pinned.test' && typeof l.msg === 'string' && l.msg.includes('refused'));
    expect(line).toBeDefined();
    expect(JSON.stringify(line)).not.toContain('127.0.0.1');
  });

  it('a client that hangs up in the middle of the handshake is counted as closed', async () => {
    const before = interception.interceptor.handshakeFailures.closed;
    await hangUpMidHandshake('pinned.test');
    await waitFor(() => interception.interceptor.handshakeFailures.closed > before);
    expect(interception.interceptor.handshakeFailuresByHost()).toContainEqual({ host: 'pinned.test', failures: 2 });
  });

  it('a client with a normal session is not counted as a refusal', async () => {
    const before = JSON.stringify(interception.interceptor.handshakeFailures);
    expect((await httpsVia('inspected.test', '/fine')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    expect(JSON.stringify(interception.interceptor.handshakeFailures)).toBe(before);
  });

  it('a ClientHello sent in the same packet as the CONNECT (head) is not lost', async () => {
    const raw = net.connect({ host: '127.0.0.1', port: proxy.port });
    await new Promise<void>((resolve) => raw.once('connect', () => resolve()));
    // TLS writes into `middle`; its first flight is held back and sent glued to the CONNECT.
    let firstFlight: ((chunk: Buffer) => void) | undefined;
    const firstChunk = new Promise<Buffer>((resolve) => (firstFlight = resolve));
    let sentFirst = false;
    const middle = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        if (!sentFirst) {
          sentFirst = true;
          firstFlight?.(chunk);
        } else raw.write(chunk);
        callback();
      },
    });
    const tls = tlsConnect({ socket: middle, servername: 'inspected.test', ca: leewayCaPem });
    const hello = await firstChunk;
    raw.write(Buffer.concat([Buffer.from(`CONNECT inspected.test:${originPort} HTTP/1.1\r\nHost: inspected.test:${originPort}\r\n\r\n`), hello]));
    let buffered = Buffer.alloc(0);
    let headerDone = false;
    raw.on('data', (chunk: Buffer) => {
      if (headerDone) return void middle.push(chunk);
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      headerDone = true;
      expect(buffered.subarray(0, end).toString('latin1')).toMatch(/^HTTP\/1\.1 200/);
      if (buffered.length > end + 4) middle.push(buffered.subarray(end + 4));
    });
    raw.on('close', () => middle.push(null));
    await new Promise<void>((resolve, reject) => {
      tls.once('secureConnect', resolve);
      tls.once('error', reject);
    });
    expect(tls.getPeerCertificate().issuer.CN).toBe('Leeway Test Interception CA');
    tls.write(`GET /head HTTP/1.1\r\nHost: inspected.test:${originPort}\r\nConnection: close\r\n\r\n`);
    let answer = '';
    tls.setEncoding('utf8');
    for await (const chunk of tls) answer += String(chunk);
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(answer).toContain(`secure origin inspected.test:${originPort} /head`);
    raw.destroy();
  });

  it('serves the CA certificate at /.leeway/ca.pem and /.leeway/ca.crt on the proxy port', async () => {
    const pem = await fetchLocal('/.leeway/ca.pem');
    expect(pem.status).toBe(200);
    expect(pem.type).toBe('application/x-pem-file');
    expect(pem.body.toString('utf8')).toBe(new X509Certificate(leewayCaPem).toString());
    expect(pem.body.toString('utf8')).not.toMatch(/PRIVATE KEY/);
    const der = await fetchLocal('/.leeway/ca.crt');
    expect(der.type).toBe('application/x-x509-ca-cert');
    expect(new X509Certificate(der.body).fingerprint256).toBe(new X509Certificate(leewayCaPem).fingerprint256);
  });

  /** A GET written on an established TLS socket, read to the end (the origin closes on Connection: close). */
  async function getOn(tls: TLSSocket, host: string, path: string): Promise<string> {
    tls.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${originPort}\r\nConnection: close\r\n\r\n`);
    let text = '';
    tls.setEncoding('latin1');
    tls.on('data', (chunk: string) => (text += chunk));
    await new Promise<void>((resolve, reject) => {
      tls.once('end', resolve);
      tls.once('error', reject);
    });
    tls.destroy();
    return text;
  }

  const countFor = (name: string): number => originConnections.filter((n) => n === name).length;

  it('an intercepted new host gets its origin connection at CONNECT time, and its first request reuses it', async () => {
    expect(countFor('fresh.test')).toBe(0);
    const { tls } = await tunnel('fresh.test', leewayCaPem);
    // No request was sent yet: the connection the origin sees is the prewarmed one (bounded wait).
    for (let i = 0; i < 100 && countFor('fresh.test') === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(countFor('fresh.test')).toBe(1);
    const text = await getOn(tls, 'fresh.test', '/first');
    expect(text.startsWith('HTTP/1.1 200')).toBe(true);
    expect(text).toContain(`secure origin fresh.test:${originPort} /first`);
    expect(countFor('fresh.test')).toBe(1);
  });

  it('a blind tunnel gets no prewarmed origin connection: the origin sees only the client’s own', async () => {
    expect(countFor('vault.test')).toBe(0);
    const { tls, peer } = await tunnel('vault.test', originCaPem);
    expect(peer.subjectaltname).toBe('DNS:vault.test');
    const text = await getOn(tls, 'vault.test', '/blind');
    expect(text).toContain(`secure origin vault.test:${originPort} /blind`);
    expect(countFor('vault.test')).toBe(1);
  });

});

/** CONNECT, send a ClientHello, and hang up as soon as the server's first flight arrives. */
async function hangUpMidHandshake(host: string): Promise<void> {
  const raw = net.connect({ host: '127.0.0.1', port: proxy.port });
  raw.on('error', () => undefined);
  raw.write(`CONNECT ${host}:${originPort} HTTP/1.1\r\nHost: ${host}:${originPort}\r\n\r\n`);
  await new Promise<void>((resolve) => raw.once('data', () => resolve()));
  // A JS stream between TLS and the socket, so the first server bytes can be seen and the line cut.
  const middle = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      raw.write(chunk, callback);
    },
  });
  const closed = new Promise<void>((resolve) => raw.once('close', () => resolve()));
  raw.once('data', () => raw.destroy());
  const client = tlsConnect({ socket: middle, servername: host, ca: leewayCaPem });
  client.on('error', () => undefined);
  await closed;
  client.destroy();
}

async function fetchLocal(path: string): Promise<{ status: number; type: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: proxy.port, path }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks) }));
      })
      .on('error', reject);
  });
}

async function waitFor(condition: () => boolean, timeoutMs = 3_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
