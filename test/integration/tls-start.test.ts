/**
 * `leeway start` with settings.tls: the real CLI loads the CA, intercepts a CONNECT that needs a
 * page, serves /.leeway/ca.pem, counts mints in /metrics, and refuses to start on a bad CA.
 */
import http from 'node:http';
import net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCa, writeCa } from '../../src/tls/ca.js';
import { writeTestPolicy, type TestPolicy } from '../helpers/policy.js';
import { spawnLeeway, type SpawnedLeeway } from '../helpers/proxy.js';

let dir: string;
let policy: TestPolicy;
let leeway: SpawnedLeeway;
let caPem: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leeway-tls-start-'));
  const ca = generateCa({ name: 'Start Test CA' });
  caPem = ca.certPem;
  const { certPath, keyPath } = await writeCa(join(dir, 'certs'), ca);
  policy = await writeTestPolicy({ settings: { interception: { enabled: true }, tls: { caCert: certPath, caKey: keyPath } } });
  leeway = await spawnLeeway(policy.dir);
});

afterAll(async () => {
  leeway?.kill();
  await leeway?.exited;
  await policy?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('leeway start with an interception CA', () => {
  it('logs that interception is ready, with the CA fingerprint and never the key', async () => {
    const line = await leeway.waitForLine((l) => l.msg === 'TLS interception ready');
    expect(String(line.ca)).toContain('Start Test CA');
    expect(JSON.stringify(leeway.lines)).not.toMatch(/PRIVATE KEY/);
  });

  it('serves the CA certificate on the proxy port', async () => {
    const answer = await get(leeway.port, '/.leeway/ca.pem');
    expect(answer.status).toBe(200);
    expect(answer.body.trim()).toBe(caPem.trim());
  });

  it('intercepts a CONNECT that needs a coach page, with a certificate from the CA, and counts the mint', async () => {
    const raw = net.connect({ host: '127.0.0.1', port: leeway.port });
    raw.write('CONNECT social.test:443 HTTP/1.1\r\nHost: social.test:443\r\n\r\n');
    const head = await new Promise<string>((resolve) => raw.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1'))));
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    const tls = tlsConnect({ socket: raw, servername: 'social.test', ca: caPem });
    await new Promise<void>((resolve, reject) => {
      tls.once('secureConnect', resolve);
      tls.once('error', reject);
    });
    expect(tls.getPeerCertificate().subjectaltname).toBe('DNS:social.test');
    tls.write('GET /feed HTTP/1.1\r\nHost: social.test\r\nConnection: close\r\n\r\n');
    let page = '';
    tls.setEncoding('utf8');
    for await (const chunk of tls) page += String(chunk);
    expect(page).toMatch(/^HTTP\/1\.1 403/);
    expect(page).toContain('Social test site: mind the time.');
    const metrics = await get(leeway.adminPort, '/metrics');
    expect(metrics.body).toMatch(/^leeway_tls_certificates_minted_total 1$/m);
    expect(metrics.body).toMatch(/^leeway_tls_certificate_cache_entries 1$/m);
  });
});

describe('leeway start with a broken CA', () => {
  it('refuses to start when the key does not match the certificate', async () => {
    const other = await mkdtemp(join(tmpdir(), 'leeway-tls-bad-'));
    const bad = await writeTestPolicy({});
    try {
      const certPath = join(other, 'ca.pem');
      const keyPath = join(other, 'ca-key.pem');
      await writeFile(certPath, generateCa().certPem);
      await writeFile(keyPath, generateCa().keyPem, { mode: 0o600 });
      await bad.write({ settings: { interception: { enabled: true }, tls: { caCert: certPath, caKey: keyPath } } });
      const started = spawnLeeway(bad.dir);
      await expect(started).rejects.toThrow(/does not match the certificate/);
    } finally {
      await bad.cleanup();
      await rm(other, { recursive: true, force: true });
    }
  });
});
