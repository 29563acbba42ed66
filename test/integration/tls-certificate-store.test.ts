import { TLSSocket, connect, createServer, type PeerCertificate, type Server } from 'node:tls';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { caFromPem, generateCa } from '../../src/tls/ca.js';
import { CertificateStore } from '../../src/tls/certificate-store.js';

const generated = generateCa({ name: 'Integration Store CA' });
const ca = caFromPem(generated.certPem, generated.keyPem);
const stranger = generateCa({ name: 'Someone Else' });

let server: Server | undefined;
let netServer: NetServer | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await new Promise<void>((resolve) => (netServer ? netServer.close(() => resolve()) : resolve()));
  server = undefined;
  netServer = undefined;
});

/**
 * A TLS server that answers with the store's certificate for the SNI name, or for `fallback`
 * when the client sends none (as the interceptor does with the CONNECT host): a tls.Server calls
 * SNICallback only when SNI is present, so the fallback context is given to the TLSSocket.
 */
async function serve(store: CertificateStore, fallback: string): Promise<number> {
  const fallbackContext = await store.secureContextFor(fallback);
  netServer = createNetServer((raw) => {
    const socket = new TLSSocket(raw, {
      isServer: true,
      secureContext: fallbackContext,
      SNICallback: (name, callback) => {
        store.secureContextFor(name).then((context) => callback(null, context), (error: Error) => callback(error));
      },
    });
    socket.on('secure', () => socket.end('hello'));
    socket.on('error', () => raw.destroy());
  });
  await new Promise<void>((resolve) => netServer?.listen(0, '127.0.0.1', resolve));
  return (netServer.address() as AddressInfo).port;
}

interface Handshake {
  readonly authorized: boolean;
  readonly peer: PeerCertificate;
  readonly body: string;
}

function handshake(port: number, options: { servername?: string; ca: string }): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: options.ca, servername: options.servername, ALPNProtocols: ['http/1.1'] });
    let body = '';
    // Read the peer once connected: after 'end' the socket may already be torn down.
    let peer: PeerCertificate | undefined;
    socket.on('secureConnect', () => (peer = socket.getPeerCertificate()));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (body += chunk));
    socket.on('end', () => (peer ? resolve({ authorized: socket.authorized, peer, body }) : reject(new Error('no handshake'))));
    socket.on('error', reject);
  });
}

describe('CertificateStore behind a real TLS server', () => {
  it.each([
    { host: 'social.test', leafKeyType: 'ec' as const },
    { host: 'www.example.com', leafKeyType: 'rsa' as const },
  ])('a client trusting the CA verifies the leaf for $host ($leafKeyType)', async ({ host, leafKeyType }) => {
    const store = new CertificateStore({ ca, cacheSize: 10, leafKeyType });
    const port = await serve(store, host);
    const { authorized, peer, body } = await handshake(port, { servername: host, ca: generated.certPem });
    expect(body).toBe('hello');
    expect(authorized).toBe(true);
    expect(peer.subjectaltname).toBe(`DNS:${host}`);
    expect(peer.issuer.CN).toBe('Integration Store CA');
  });

  it('a client that does not trust the CA refuses the leaf', async () => {
    const port = await serve(new CertificateStore({ ca, cacheSize: 10 }), 'x.test');
    await expect(handshake(port, { servername: 'x.test', ca: stranger.certPem })).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });

  it('the leaf for one host does not pass for another', async () => {
    const store = new CertificateStore({ ca, cacheSize: 10 });
    // The server always presents a.test's certificate whatever the client asks for.
    server = createServer({ SNICallback: (_name, cb) => void store.secureContextFor('a.test').then((c) => cb(null, c)) });
    server.on('secureConnection', (socket) => socket.end('no'));
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await expect(handshake(port, { servername: 'b.test', ca: generated.certPem })).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  it('an IP literal (no SNI sent) gets a certificate with its iPAddress SAN that verifies', async () => {
    const store = new CertificateStore({ ca, cacheSize: 10 });
    const port = await serve(store, '127.0.0.1');
    // Node, like browsers, sends no SNI for an IP address; the fallback names the certificate.
    const { authorized, peer } = await handshake(port, { ca: generated.certPem });
    expect(authorized).toBe(true);
    expect(peer.subjectaltname).toBe('IP Address:127.0.0.1');
  });

  it('many concurrent handshakes to one new host cost one mint', async () => {
    const store = new CertificateStore({ ca, cacheSize: 10 });
    const port = await serve(store, 'fallback.test');
    expect(store.minted).toBe(1);
    const results = await Promise.all(Array.from({ length: 12 }, () => handshake(port, { servername: 'burst.test', ca: generated.certPem })));
    expect(results.every((r) => r.authorized && r.peer.subjectaltname === 'DNS:burst.test')).toBe(true);
    expect(store.minted).toBe(2);
  });

  it('a server that has no certificate for a client without SNI fails the handshake (why the fallback exists)', async () => {
    const store = new CertificateStore({ ca, cacheSize: 10 });
    server = createServer({ SNICallback: (name, cb) => void store.secureContextFor(name).then((c) => cb(null, c)) });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await expect(handshake(port, { ca: generated.certPem })).rejects.toThrow(/handshake failure/);
    expect(store.minted).toBe(0);
  });
});
