/**
 * The interceptor alone, without the proxy: a plain TCP server hands every connection to it as
 * if a CONNECT had just been answered, and `inner` answers requests itself.
 */
import net from 'node:net';
import { connect as tlsConnect, type PeerCertificate } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.js';
import type { InnerHandlers } from '../../src/proxy/interceptor.js';
import { caFromPem, generateCa } from '../../src/tls/ca.js';
import { CertificateStore } from '../../src/tls/certificate-store.js';
import { createTlsInterceptor, type HandshakeFailureReason, type TlsInterceptor } from '../../src/tls/interceptor.js';
import { deferredInterceptor } from '../../src/tls/interception.js';

const generated = generateCa({ name: 'Interceptor Test CA' });
const ca = caFromPem(generated.certPem, generated.keyPem);

const inner: InnerHandlers = {
  request: (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`inner saw ${req.method ?? ''} ${req.url ?? ''} host=${req.headers.host ?? ''}`);
  },
  upgrade: (_req, socket: Duplex) => socket.destroy(),
};

let server: net.Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function serve(interceptor: TlsInterceptor, target: string): Promise<number> {
  server = net.createServer((socket) => interceptor.intercept(socket, Buffer.alloc(0), { host: target, port: 443 }, inner));
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function handshake(port: number, servername: string | undefined): Promise<{ peer: PeerCertificate; answer: string; alpn: string | false }> {
  return new Promise((resolve, reject) => {
    const tls = tlsConnect({ host: '127.0.0.1', port, servername, ca: generated.certPem, ALPNProtocols: ['http/1.1'] });
    let peer: PeerCertificate | undefined;
    let alpn: string | false = false;
    let answer = '';
    tls.setEncoding('utf8');
    tls.on('data', (c: string) => (answer += c));
    tls.once('secureConnect', () => {
      peer = tls.getPeerCertificate();
      alpn = tls.alpnProtocol ?? false;
      tls.write(`GET /x HTTP/1.1\r\nHost: ${servername ?? 'ip'}\r\nConnection: close\r\n\r\n`);
    });
    tls.once('end', () => (peer ? resolve({ peer, answer, alpn }) : reject(new Error('no handshake'))));
    tls.once('error', reject);
  });
}

async function waitFor(condition: () => boolean, timeoutMs = 3_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('createTlsInterceptor', () => {
  it('terminates TLS with the CONNECT host certificate, negotiates http/1.1 and hands requests to inner', async () => {
    const store = new CertificateStore({ ca, cacheSize: 10 });
    const port = await serve(createTlsInterceptor({ store, logger: silentLogger() }), 'Example.TEST');
    const { peer, answer, alpn } = await handshake(port, 'example.test');
    expect(peer.subjectaltname).toBe('DNS:example.test');
    expect(alpn).toBe('http/1.1');
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(answer).toContain('inner saw GET /x host=example.test');
  });

  it('names the certificate after an IP-literal CONNECT target when the client sends no SNI', async () => {
    const store = new CertificateStore({ ca, cacheSize: 10 });
    const port = await serve(createTlsInterceptor({ store, logger: silentLogger() }), '127.0.0.1');
    const { peer } = await handshake(port, undefined);
    expect(peer.subjectaltname).toBe('IP Address:127.0.0.1');
  });

  it('never mints for an SNI that differs from the CONNECT host: the client sees a name mismatch', async () => {
    const store = new CertificateStore({ ca, cacheSize: 10 });
    const port = await serve(createTlsInterceptor({ store, logger: silentLogger() }), 'decided.test');
    await expect(handshake(port, 'fronted.test')).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    expect(store.minted).toBe(1);
    await expect(store.certificatePemFor('decided.test')).resolves.toContain('BEGIN CERTIFICATE');
    expect(store.minted).toBe(1);
  });

  it('counts a client that never finishes its handshake as a timeout', async () => {
    const store = new CertificateStore({ ca, cacheSize: 10 });
    const seen: [string, HandshakeFailureReason][] = [];
    const interceptor = createTlsInterceptor({ store, logger: silentLogger(), handshakeTimeoutMs: 100, onHandshakeFailure: (host, reason) => seen.push([host, reason]) });
    const port = await serve(interceptor, 'slow.test');
    const socket = net.connect({ host: '127.0.0.1', port });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    await closed;
    expect(seen).toEqual([['slow.test', 'timeout']]);
    expect(interceptor.handshakeFailures.timeout).toBe(1);
    await waitFor(() => interceptor.open === 0);
  });

  it('counts an unparseable ClientHello as a protocol failure', async () => {
    const store = new CertificateStore({ ca, cacheSize: 10 });
    const interceptor = createTlsInterceptor({ store, logger: silentLogger() });
    const port = await serve(interceptor, 'garbage.test');
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    socket.write('GET / HTTP/1.1\r\nHost: garbage.test\r\n\r\n');
    await waitFor(() => interceptor.handshakeFailures.protocol === 1);
    socket.destroy();
  });

  it('keeps per-host failure counts bounded', async () => {
    const store = new CertificateStore({ ca, cacheSize: 10 });
    const interceptor = createTlsInterceptor({ store, logger: silentLogger(), handshakeTimeoutMs: 50, maxTrackedHosts: 3 });
    for (let i = 0; i < 5; i++) {
      const port = await serve(interceptor, `pinned${i}.test`);
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.once('close', () => resolve()));
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      server = undefined;
    }
    expect(interceptor.handshakeFailures.timeout).toBe(5);
    expect(interceptor.handshakeFailuresByHost().map((e) => e.host).sort()).toEqual(['pinned2.test', 'pinned3.test', 'pinned4.test']);
  });

  it('closes the client when the CONNECT host cannot have a certificate', async () => {
    const store = new CertificateStore({ ca, cacheSize: 10 });
    const port = await serve(createTlsInterceptor({ store, logger: silentLogger() }), 'bad host');
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    expect(store.minted).toBe(0);
  });
});

describe('deferredInterceptor', () => {
  it('is unavailable until set, then delegates', async () => {
    const deferred = deferredInterceptor();
    expect(deferred.available).toBe(false);
    const store = new CertificateStore({ ca, cacheSize: 10 });
    deferred.set(createTlsInterceptor({ store, logger: silentLogger() }));
    expect(deferred.available).toBe(true);
    server = net.createServer((socket) => deferred.intercept(socket, Buffer.alloc(0), { host: 'deferred.test', port: 443 }, inner));
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const { peer } = await handshake((server.address() as AddressInfo).port, 'deferred.test');
    expect(peer.subjectaltname).toBe('DNS:deferred.test');
  });
});
