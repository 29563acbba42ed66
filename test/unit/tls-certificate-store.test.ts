import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { caFromPem, generateCa } from '../../src/tls/ca.js';
import { CertificateStore } from '../../src/tls/certificate-store.js';
import { normaliseCertificateHost } from '../../src/tls/leaf-certificate.js';

const DAY_MS = 86_400_000;
const NOW = Date.parse('2026-06-01T10:00:00Z');
const generated = generateCa({ name: 'Store Test CA', now: new Date(NOW - 10 * DAY_MS) });
const ca = caFromPem(generated.certPem, generated.keyPem, { now: new Date(NOW) });
const caX509 = new X509Certificate(generated.certPem);
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

function storeAt(clock: () => number, cacheSize = 100, leafKeyType: 'ec' | 'rsa' = 'ec'): CertificateStore {
  return new CertificateStore({ ca, cacheSize, clock, leafKeyType });
}

describe('CertificateStore leaf certificates', () => {
  it.each([
    { host: 'example.com', san: 'DNS:example.com', cn: 'CN=example.com', key: 'ec' as const },
    { host: 'Social.Test.', san: 'DNS:social.test', cn: 'CN=social.test', key: 'ec' as const },
    { host: 'www.example.org', san: 'DNS:www.example.org', cn: 'CN=www.example.org', key: 'rsa' as const },
    { host: '127.0.0.1', san: 'IP Address:127.0.0.1', cn: 'CN=127.0.0.1', key: 'ec' as const },
    { host: '[::1]', san: 'IP Address:0:0:0:0:0:0:0:1', cn: 'CN=::1', key: 'ec' as const },
    { host: `${'a'.repeat(63)}.test`, san: `DNS:${'a'.repeat(63)}.test`, cn: 'O=Leeway', key: 'ec' as const },
  ])('$host ($key) gets SAN $san, serverAuth, a positive 128-bit serial and a CA signature', async ({ host, san, cn, key }) => {
    const pem = await storeAt(() => NOW, 10, key).certificatePemFor(host);
    const leaf = new X509Certificate(pem);
    expect(leaf.subjectAltName).toBe(san);
    expect(leaf.subject).toBe(cn);
    expect(leaf.issuer).toBe(caX509.subject);
    expect(leaf.checkIssued(caX509)).toBe(true);
    expect(leaf.verify(caX509.publicKey)).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.keyUsage).toEqual([SERVER_AUTH]);
    expect(leaf.publicKey.asymmetricKeyType).toBe(key);
    expect(leaf.serialNumber).toMatch(/^[0-9A-F]{32}$/);
    const firstByte = Number.parseInt(leaf.serialNumber.slice(0, 2), 16);
    expect(firstByte).toBeGreaterThanOrEqual(0x01);
    expect(firstByte).toBeLessThanOrEqual(0x7f);
    expect(Date.parse(leaf.validFrom)).toBe(Math.floor((NOW - DAY_MS) / 1000) * 1000);
    expect(Date.parse(leaf.validTo)).toBe(Math.floor((NOW + 30 * DAY_MS) / 1000) * 1000);
  });

  it('never lets a leaf outlive the CA', async () => {
    const short = generateCa({ days: 5, now: new Date(NOW) });
    const store = new CertificateStore({ ca: caFromPem(short.certPem, short.keyPem, { now: new Date(NOW) }), cacheSize: 4, clock: () => NOW });
    const leaf = new X509Certificate(await store.certificatePemFor('short.test'));
    expect(Date.parse(leaf.validTo)).toBe(Date.parse(new X509Certificate(short.certPem).validTo));
  });

  it('gives every leaf a different serial', async () => {
    const store = storeAt(() => NOW);
    const serials = new Set<string>();
    for (let i = 0; i < 20; i++) serials.add(new X509Certificate(await store.certificatePemFor(`s${i}.test`)).serialNumber);
    expect(serials.size).toBe(20);
  });
});

describe('CertificateStore cache', () => {
  it('stays within its cap when cap+10 hosts are minted', async () => {
    const store = storeAt(() => NOW, 8);
    for (let i = 0; i < 18; i++) {
      await store.secureContextFor(`host${i}.test`);
      expect(store.size).toBeLessThanOrEqual(8);
    }
    expect(store.size).toBe(8);
    expect(store.minted).toBe(18);
    // The least recently used was evicted and costs a new mint; the most recent did not.
    await store.secureContextFor('host17.test');
    expect(store.minted).toBe(18);
    await store.secureContextFor('host0.test');
    expect(store.minted).toBe(19);
  });

  it('shares one mint between concurrent calls for a host, and treats name variants as one host', async () => {
    const store = storeAt(() => NOW);
    const contexts = await Promise.all(['shared.test', 'SHARED.test', 'shared.test.', ...Array.from({ length: 20 }, () => 'shared.test')].map((h) => store.secureContextFor(h)));
    expect(store.minted).toBe(1);
    expect(new Set(contexts).size).toBe(1);
    await store.secureContextFor('shared.test');
    expect(store.minted).toBe(1);
  });

  it('mints again a day before a cached leaf expires', async () => {
    let now = NOW;
    const store = storeAt(() => now);
    await store.secureContextFor('renew.test');
    now = NOW + 28 * DAY_MS;
    await store.secureContextFor('renew.test');
    expect(store.minted).toBe(1);
    now = NOW + 29.5 * DAY_MS;
    await store.secureContextFor('renew.test');
    expect(store.minted).toBe(2);
  });

  it('rejects a cache size below one', () => {
    expect(() => new CertificateStore({ ca, cacheSize: 0 })).toThrow(RangeError);
  });
});

describe('normaliseCertificateHost', () => {
  it.each([
    ['Example.COM', 'example.com'],
    ['example.com.', 'example.com'],
    ['[2001:db8::1]', '2001:db8::1'],
    ['10.0.0.1', '10.0.0.1'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
  ])('%s → %s', (input, output) => {
    expect(normaliseCertificateHost(input)).toBe(output);
  });

  it.each(['', 'bad host', 'a..b', `${'x'.repeat(64)}.com`, 'evil.com/../x', 'bücher.example', `${'a.'.repeat(127)}com`])('refuses %j', (host) => {
    expect(() => normaliseCertificateHost(host)).toThrow(expect.objectContaining({ code: 'LEEWAY_ERR_BAD_REQUEST' }));
  });

  it('rejects a bad host through the store without minting', async () => {
    const store = storeAt(() => NOW);
    await expect(store.secureContextFor('no spaces.test')).rejects.toMatchObject({ code: 'LEEWAY_ERR_BAD_REQUEST' });
    expect(store.minted).toBe(0);
  });
});
