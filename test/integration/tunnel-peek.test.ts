/**
 * CONNECT with interception available (issue 4 item 3): every tunnel first reads the client's
 * ClientHello, so the name it really asks for (SNI) decides where it differs from the CONNECT
 * host, then relays blind with the bytes read so far replayed. What must still hold: clients
 * that do not speak TLS, servers that speak first, a client that stays silent, a ClientHello
 * split over several TCP segments, byte counts for accounting, and refusals recorded.
 */
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createSecureContext, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noopAccounting } from '../../src/index.js';
import type { Accounting, RequestRecord, TunnelActivity } from '../../src/index.js';
import { silentLogger } from '../../src/index.js';
import { caFromPem, generateCa, writeCa } from '../../src/tls/ca.js';
import { generateLeafKey, mintLeafCertificate } from '../../src/tls/leaf-certificate.js';
import { deferredInterceptor, setupInterception } from '../../src/tls/interception.js';
import { STANDARD_CATEGORIES, STANDARD_RULES, TEST_HOSTS, writeTestPolicy, type TestPolicy } from '../helpers/policy.js';
import { startEchoServer } from '../helpers/origin.js';
import { startLeeway, type RunningLeeway } from '../helpers/proxy.js';

/** The wait for a ClientHello in src/proxy/pipeline.ts (CLIENT_HELLO_TIMEOUT_MS). */
const CLIENT_HELLO_WAIT_MS = 1_000;
const BANNER = 'SSH-2.0-TestServer\r\n';

let dir: string;
let policy: TestPolicy;
let proxy: RunningLeeway;
let echo: net.Server;
let echoPort: number;
let banner: net.Server;
let bannerPort: number;
/** An allowed CONNECT port where nothing listens. */
let deadPort: number;
let origin: https.Server;
let originPort: number;
let leewayCaPem: string;
let originCaPem: string;
const records: RequestRecord[] = [];
const flows: TunnelActivity[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leeway-peek-'));
  const leewayCa = generateCa({ name: 'Leeway Peek Test CA' });
  leewayCaPem = leewayCa.certPem;
  const { certPath, keyPath } = await writeCa(join(dir, 'certs'), leewayCa);
  const originCa = generateCa({ name: 'Peek Test Public Root' });
  originCaPem = originCa.certPem;
  await writeFile(join(dir, 'origin-roots.pem'), originCaPem);
  const signer = caFromPem(originCa.certPem, originCa.keyPem);
  const key = generateLeafKey('ec');

  ({ server: echo, port: echoPort } = await startEchoServer());
  // A server that speaks first (SSH, SMTP): its banner at once, then an echo.
  banner = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.write(BANNER);
    socket.on('data', (chunk) => socket.write(chunk));
  });
  await new Promise<void>((resolve) => banner.listen(0, '127.0.0.1', resolve));
  bannerPort = (banner.address() as AddressInfo).port;
  // A TLS origin with a certificate for whatever name it is asked for.
  origin = https.createServer(
    { SNICallback: (name, cb) => cb(null, createSecureContext({ key: key.privateKeyPem, cert: mintLeafCertificate({ host: name, ca: signer, leafKey: key, now: Date.now() }).certPem })) },
    (req, res) => res.end(`origin ${req.headers.host ?? ''} ${req.url ?? ''}`),
  );
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  originPort = (origin.address() as AddressInfo).port;

  const closed = net.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  deadPort = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));

  const hosts: Record<string, string> = {};
  for (const host of [...TEST_HOSTS, 'bank.test', 'closed.test']) hosts[host] = '127.0.0.1';
  policy = await writeTestPolicy({
    proxy: { connectPorts: [echoPort, bannerPort, originPort, deadPort], hosts },
    settings: {
      interception: { enabled: true, doNotInspect: ['bank', 'closed-bank'] },
      tls: { caCert: certPath, caKey: keyPath, extraCaBundle: join(dir, 'origin-roots.pem') },
    },
    categories: {
      ...STANDARD_CATEGORIES,
      bank: { description: 'A bank, never inspected.', domains: ['bank.test'] },
      'closed-bank': { description: 'A blocked host that may not be inspected.', domains: ['closed.test'] },
    },
    rules: [{ id: 'block-closed-bank', description: 'Closed test bank.', category: 'closed-bank', action: 'block', reason: 'Closed.' }, ...STANDARD_RULES],
  });
  const accounting: Accounting = { ...noopAccounting, requestDone: (r) => void records.push(r), tunnelBytes: (r) => void flows.push(r) };
  const deferred = deferredInterceptor();
  proxy = await startLeeway({ policies: policy.dir, interceptor: deferred, accounting });
  const setUp = await setupInterception(proxy.leeway.policy.settings, { logger: silentLogger() });
  if (setUp === undefined) throw new Error('interception not configured');
  deferred.set(setUp.interceptor);
});

afterAll(async () => {
  await proxy?.close();
  await new Promise((resolve) => echo?.close(resolve));
  await new Promise((resolve) => banner?.close(resolve));
  origin?.closeAllConnections();
  await new Promise((resolve) => origin?.close(resolve));
  await policy?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

interface Tunnel {
  readonly socket: net.Socket;
  /** Bytes that came after the 200 head, in the same reads. */
  readonly rest: Buffer;
  readonly status: number;
}

/** CONNECT and read the answer's head. */
function connect(target: string): Promise<Tunnel> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port, allowHalfOpen: true });
    let buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffer = Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      socket.pause();
      resolve({ socket, rest: buffer.subarray(end + 4), status: Number(buffer.subarray(9, 12).toString('latin1')) });
    };
    socket.on('data', onData);
    socket.on('error', reject);
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

/** Everything the socket receives until it closes. */
function readAll(socket: net.Socket, first: Buffer = Buffer.alloc(0)): Promise<string> {
  const chunks = [first];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.resume();
  return new Promise((resolve) => socket.once('close', () => resolve(Buffer.concat(chunks).toString('latin1'))));
}

/** Resolves with the text received once it contains `text` (bounded wait). */
function receive(socket: net.Socket, first: Buffer, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = first.toString('latin1');
    if (got.includes(text)) return resolve(got);
    const timer = setTimeout(() => reject(new Error(`never received ${JSON.stringify(text)}; got ${JSON.stringify(got)}`)), 5_000);
    const onData = (chunk: Buffer): void => {
      got += chunk.toString('latin1');
      if (!got.includes(text)) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      resolve(got);
    };
    socket.on('data', onData);
    socket.resume();
  });
}

/** The record of the tunnel to `port` (bounded wait: it is written when both sides closed). */
async function recordFor(predicate: (record: RequestRecord) => boolean): Promise<RequestRecord> {
  for (let i = 0; i < 200; i++) {
    const found = records.find(predicate);
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('no matching request record');
}

/**
 * TLS through a CONNECT to `target`, with the ClientHello (the first flight) written to the
 * proxy in `pieces` TCP writes 20 ms apart.
 */
async function tlsVia(target: string, servername: string, ca: string, pieces: number): Promise<TLSSocket> {
  const { socket, rest, status } = await connect(target);
  expect(status).toBe(200);
  let first = true;
  const middle = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      if (!first) return void socket.write(chunk, () => callback());
      first = false;
      const size = Math.ceil(chunk.length / pieces);
      const send = (at: number): void => {
        if (at >= chunk.length) return callback();
        socket.write(chunk.subarray(at, at + size));
        setTimeout(() => send(at + size), 20);
      };
      send(0);
    },
  });
  socket.on('data', (chunk: Buffer) => middle.push(chunk));
  socket.on('end', () => middle.push(null));
  if (rest.length > 0) middle.push(rest);
  socket.resume();
  const tls = tlsConnect({ socket: middle, servername, ca, ALPNProtocols: ['http/1.1'] });
  await new Promise<void>((resolve, reject) => {
    tls.once('secureConnect', resolve);
    tls.once('error', reject);
  });
  return tls;
}

async function get(tls: TLSSocket, host: string, path: string): Promise<string> {
  tls.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${originPort}\r\nConnection: close\r\n\r\n`);
  let text = '';
  tls.setEncoding('latin1');
  for await (const chunk of tls) text += String(chunk);
  return text;
}

describe('CONNECT with interception available: the ClientHello is read first', () => {
  it('a client that does not speak TLS is relayed blind, its first bytes replayed untouched, and counted', async () => {
    const { socket, status } = await connect(`origin.test:${echoPort}`);
    expect(status).toBe(200);
    const all = readAll(socket);
    socket.write('PLAIN hello\n');
    socket.end();
    expect(await all).toBe('PLAIN hello\nbye');
    const record = await recordFor((r) => r.kind === 'tunnel' && r.action === 'allow' && r.bytesIn === 12);
    expect(record).toMatchObject({ status: 200, bytesIn: 12, bytesOut: 15 });
    // Bytes the client sent count as activity (accounting reports them as they flow).
    expect(flows.some((f) => f.direction === 'client-to-origin' && f.bytes > 0)).toBe(true);
  });

  it('a server that speaks first gets its tunnel at once, without waiting for a ClientHello, and its banner is not lost', async () => {
    const started = Date.now();
    const { socket, rest, status } = await connect(`origin.test:${bannerPort}`);
    expect(status).toBe(200);
    expect(await receive(socket, rest, BANNER)).toBe(BANNER);
    // The ClientHello wait was not sat out: the origin's first bytes ended it.
    expect(Date.now() - started).toBeLessThan(CLIENT_HELLO_WAIT_MS);
    socket.write('ping\n');
    expect(await receive(socket, Buffer.alloc(0), 'ping\n')).toBe('ping\n');
    socket.destroy();
    const record = await recordFor((r) => r.kind === 'tunnel' && r.bytesOut >= BANNER.length + 5 && r.bytesIn === 5);
    expect(record.bytesOut).toBe(BANNER.length + 5);
  });

  it('a client that says nothing while the origin says nothing gets a blind tunnel once the wait is over', async () => {
    const { socket, status } = await connect(`origin.test:${echoPort}`);
    expect(status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, CLIENT_HELLO_WAIT_MS + 200));
    socket.write('late\n');
    expect(await receive(socket, Buffer.alloc(0), 'late\n')).toBe('late\n');
    socket.destroy();
  });

  it('a ClientHello split over several TCP segments is reassembled: the same SNI is tunnelled blind to the origin', async () => {
    const tls = await tlsVia(`origin.test:${originPort}`, 'origin.test', originCaPem, 4);
    expect(tls.getPeerCertificate().issuer.CN).toBe('Peek Test Public Root');
    expect(await get(tls, 'origin.test', '/split')).toContain(`origin origin.test:${originPort} /split`);
  });

  it('a fronted SNI of a blocked host, split over segments, is intercepted and gets the block page for that name', async () => {
    const tls = await tlsVia(`origin.test:${originPort}`, 'block.test', leewayCaPem, 3);
    const peer = tls.getPeerCertificate();
    expect(peer.subjectaltname).toBe('DNS:block.test');
    expect(peer.issuer.CN).toBe('Leeway Peek Test CA');
    const page = await get(tls, 'block.test', '/');
    expect(page).toMatch(/^HTTP\/1\.1 403/);
    expect(page).toContain('Known bad test site.');
  });

  it('a fronted SNI of a blocked do-not-inspect host: the connection is closed and the refusal recorded', async () => {
    await expect(tlsVia(`bank.test:${originPort}`, 'closed.test', originCaPem, 1)).rejects.toThrow();
    const record = await recordFor((r) => r.ruleId === 'block-closed-bank');
    expect(record).toMatchObject({ kind: 'tunnel', action: 'block', status: 403, category: 'closed-bank', bytesIn: 0, bytesOut: 0 });
  });

  it('an unreachable origin of a CONNECT to a name still gets a 502 before any 200', async () => {
    const { socket, status } = await connect(`origin.test:${deadPort}`);
    expect(status).toBe(502);
    socket.destroy();
  });
});
