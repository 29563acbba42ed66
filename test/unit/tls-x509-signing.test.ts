import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import forge from 'node-forge';
import { describe, expect, it } from 'vitest';
import { caFromPem } from '../../src/tls/ca.js';
import { CertificateStore } from '../../src/tls/certificate-store.js';
import { buildTbs, derToPem, randomSerialHex, signNative, signatureAlgorithmFor } from '../../src/tls/x509-signing.js';

/** A CA whose key is EC P-256 (as an admin might bring), laid out by forge and signed natively. */
function ecCaPem(): { certPem: string; keyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(new forge.jsbn.BigInteger('1', 10), new forge.jsbn.BigInteger('65537', 10));
  cert.serialNumber = randomSerialHex();
  cert.validity.notBefore = new Date(Date.now() - 86_400_000);
  cert.validity.notAfter = new Date(Date.now() + 365 * 86_400_000);
  const subject = [{ name: 'commonName', value: 'EC Test CA' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
  ]);
  const tbs = buildTbs(cert, 'ecdsa-sha256', { spkiDer: publicKey.export({ type: 'spki', format: 'der' }) });
  return { certPem: signNative(tbs, 'ecdsa-sha256', privateKey), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

describe('randomSerialHex', () => {
  it('is always 16 bytes, positive and without a leading zero byte', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const serial = randomSerialHex();
      expect(serial).toMatch(/^[0-9a-f]{32}$/);
      const first = Number.parseInt(serial.slice(0, 2), 16);
      expect(first).toBeGreaterThanOrEqual(0x01);
      expect(first).toBeLessThanOrEqual(0x7f);
      seen.add(serial);
    }
    expect(seen.size).toBe(2000);
  });
});

describe('native signing', () => {
  it.each([
    { type: 'rsa' as const, algorithm: 'rsa-sha256' },
    { type: 'ec' as const, algorithm: 'ecdsa-sha256' },
  ])('picks $algorithm for a $type key', ({ type, algorithm }) => {
    const { privateKey } = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 1024 }) : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(signatureAlgorithmFor(privateKey)).toBe(algorithm);
  });

  it('refuses key types it cannot sign certificates with', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    expect(() => signatureAlgorithmFor(privateKey)).toThrow(/RSA or EC/);
  });

  it('an EC CA signs leaves with ECDSA that verify against it', async () => {
    const { certPem, keyPem } = ecCaPem();
    const caX509 = new X509Certificate(certPem);
    expect(caX509.verify(caX509.publicKey)).toBe(true);
    const store = new CertificateStore({ ca: caFromPem(certPem, keyPem), cacheSize: 2 });
    const leaf = new X509Certificate(await store.certificatePemFor('ec-signed.test'));
    expect(leaf.checkIssued(caX509)).toBe(true);
    expect(leaf.verify(caX509.publicKey)).toBe(true);
    const signatureAlgorithm = (forge.asn1.fromDer(leaf.raw.toString('binary')).value as forge.asn1.Asn1[])[1];
    const oid = (signatureAlgorithm?.value as forge.asn1.Asn1[])[0]?.value;
    expect(forge.asn1.derToOid(String(oid))).toBe('1.2.840.10045.4.3.2');
  });

  it('derToPem wraps base64 at 64 columns', () => {
    const pem = derToPem(Buffer.alloc(100, 7));
    const lines = pem.trim().split('\n');
    expect(lines[0]).toBe('-----BEGIN CERTIFICATE-----');
    expect(lines.at(-1)).toBe('-----END CERTIFICATE-----');
    expect(lines.slice(1, -1).every((line) => line.length <= 64)).toBe(true);
    expect(Buffer.from(lines.slice(1, -1).join(''), 'base64')).toEqual(Buffer.alloc(100, 7));
  });
});
