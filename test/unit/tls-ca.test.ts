import { X509Certificate } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isLeewayError } from '../../src/errors.js';
import { run as caCommand } from '../../src/cli/ca.js';
import { caFromPem, generateCa, loadCa, writeCa, type GeneratedCa } from '../../src/tls/ca.js';
import { CertificateStore } from '../../src/tls/certificate-store.js';

const DAY_MS = 86_400_000;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leeway-ca-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

// One RSA CA for the whole file: generation is the slow part.
const shared: GeneratedCa = generateCa({ name: 'Test Leeway CA' });

describe('generateCa', () => {
  it('makes a root CA fit only for signing certificates and CRLs', () => {
    const now = new Date('2026-03-01T12:00:00Z');
    const ca = generateCa({ name: 'Acme Interception', days: 100, now });
    const cert = forge.pki.certificateFromPem(ca.certPem);
    const basic = cert.getExtension('basicConstraints') as { cA: boolean; pathLenConstraint: number; critical: boolean };
    const usage = cert.getExtension('keyUsage') as Record<string, boolean>;
    expect(basic).toMatchObject({ cA: true, pathLenConstraint: 0, critical: true });
    expect(usage).toMatchObject({ keyCertSign: true, cRLSign: true, critical: true });
    expect(usage.digitalSignature).toBeFalsy();
    expect(cert.getExtension('subjectKeyIdentifier')).toBeTruthy();
    expect(cert.subject.getField('CN').value).toBe('Acme Interception');
    expect(cert.validity.notBefore.getTime()).toBe(now.getTime() - DAY_MS);
    expect(cert.validity.notAfter.getTime()).toBe(now.getTime() + 100 * DAY_MS);
    const x509 = new X509Certificate(ca.certPem);
    expect(x509.ca).toBe(true);
    expect(x509.verify(x509.publicKey)).toBe(true);
    expect(x509.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    const serial = x509.serialNumber;
    expect(serial).toMatch(/^[0-9A-F]{32}$/);
    expect(Number.parseInt(serial.slice(0, 2), 16)).toBeGreaterThanOrEqual(1);
    expect(Number.parseInt(serial.slice(0, 2), 16)).toBeLessThanOrEqual(0x7f);
  });

  it('defaults to ten years and the name "Leeway Interception CA"', () => {
    const x509 = new X509Certificate(generateCa().certPem);
    expect(x509.subject).toContain('CN=Leeway Interception CA');
    const years = (Date.parse(x509.validTo) - Date.now()) / (365.25 * DAY_MS);
    expect(years).toBeGreaterThan(9.9);
    expect(years).toBeLessThan(10.1);
  });

  it.each([
    { name: 'zero days', options: { days: 0 } },
    { name: 'fractional days', options: { days: 1.5 } },
    { name: 'empty name', options: { name: ' ' } },
    { name: 'name over 64 characters', options: { name: 'x'.repeat(65) } },
  ])('rejects $name', ({ options }) => {
    expect(() => generateCa(options)).toThrow(expect.objectContaining({ code: 'LEEWAY_ERR_CONFIG' }));
  });
});

describe('writeCa', () => {
  it('creates the key with mode 0600 and refuses to overwrite without force', async () => {
    const { certPath, keyPath } = await writeCa(join(dir, 'certs'), shared);
    expect((await stat(keyPath)).mode & 0o777).toBe(0o600);
    expect((await stat(certPath)).mode & 0o077 & ~0o044).toBe(0);
    await expect(writeCa(join(dir, 'certs'), generateCa())).rejects.toMatchObject({ code: 'LEEWAY_ERR_CA' });
    expect(await readFile(certPath, 'utf8')).toBe(shared.certPem);
  });

  it('with force, replaces the files and restores mode 0600 on a loosened key', async () => {
    const { keyPath, certPath } = await writeCa(dir, shared);
    await chmod(keyPath, 0o644);
    const other = generateCa({ name: 'Replacement' });
    await writeCa(dir, other, { force: true });
    expect((await stat(keyPath)).mode & 0o777).toBe(0o600);
    expect(await readFile(certPath, 'utf8')).toBe(other.certPem);
  });
});

describe('loadCa', () => {
  it('loads a CA written by writeCa and exposes no key material in its JSON', async () => {
    const { certPath, keyPath } = await writeCa(dir, shared);
    const ca = await loadCa(certPath, keyPath);
    expect(ca.subjectName).toContain('Test Leeway CA');
    expect(ca.warnings).toEqual([]);
    const json = JSON.stringify(ca);
    const keyBody = shared.keyPem.split('\n')[1] ?? '';
    expect(keyBody.length).toBeGreaterThan(20);
    expect(json).not.toContain(keyBody);
  });

  it('warns when the key file is readable by others', async () => {
    const { certPath, keyPath } = await writeCa(dir, shared);
    await chmod(keyPath, 0o644);
    const ca = await loadCa(certPath, keyPath);
    expect(ca.warnings.join()).toMatch(/readable by other users/);
  });

  const leafPem = async (): Promise<string> => {
    const store = new CertificateStore({ ca: caFromPem(shared.certPem, shared.keyPem), cacheSize: 2 });
    return store.certificatePemFor('leaf.test');
  };

  it.each([
    { name: 'a missing certificate', setup: async () => ({ cert: join(dir, 'none.pem'), key: await file('k.pem', shared.keyPem) }), message: /not found.*leeway ca init/ },
    { name: 'a missing key', setup: async () => ({ cert: await file('c.pem', shared.certPem), key: join(dir, 'none.pem') }), message: /CA key .* not found/ },
    { name: 'a directory instead of a file', setup: async () => ({ cert: await folder('c'), key: await file('k.pem', shared.keyPem) }), message: /is a directory/ },
    { name: 'a certificate that is not PEM', setup: async () => ({ cert: await file('c.pem', 'hello'), key: await file('k.pem', shared.keyPem) }), message: /not a PEM X.509 certificate/ },
    { name: 'a key that is not PEM', setup: async () => ({ cert: await file('c.pem', shared.certPem), key: await file('k.pem', 'nope') }), message: /not an unencrypted PEM private key/ },
    { name: 'a leaf certificate', setup: async () => ({ cert: await file('c.pem', await leafPem()), key: await file('k.pem', shared.keyPem) }), message: /not a CA certificate/ },
    { name: 'a key of another CA', setup: async () => ({ cert: await file('c.pem', shared.certPem), key: await file('k.pem', generateCa().keyPem) }), message: /does not match/ },
    { name: 'an expired CA', setup: async () => ({ cert: await file('c.pem', generateCa({ days: 1, now: new Date('2020-01-01T00:00:00Z') }).certPem), key: await file('k.pem', shared.keyPem) }), message: /expired|does not match/ },
  ])('refuses $name with LEEWAY_ERR_CA', async ({ setup, message }) => {
    const { cert, key } = await setup();
    const error: unknown = await loadCa(cert, key).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isLeewayError(error)).toBe(true);
    expect(error).toMatchObject({ code: 'LEEWAY_ERR_CA', message: expect.stringMatching(message) });
  });

  it('refuses an expired CA whose key matches', () => {
    const old = generateCa({ days: 1, now: new Date('2020-01-01T00:00:00Z') });
    expect(() => caFromPem(old.certPem, old.keyPem)).toThrow(/expired on 2020-01-02/);
  });
});

describe('leeway ca init', () => {
  it.each([
    { args: ['init', '--out', 'OUT'], code: 0, printed: /ca-key\.pem[\s\S]*Group Policy[\s\S]*keychain[\s\S]*ImportEnterpriseRoots[\s\S]*certutil[\s\S]*update-ca-certificates/ },
    { args: ['init', '--out', 'OUT', '--name', 'Acme', '--days', '30'], code: 0, printed: /"CN=Acme/ },
    { args: ['init', '--out', 'OUT', '--days', 'ten'], code: 1, printed: /--days/ },
    { args: ['create'], code: 2, printed: /sub-command "init"/ },
    { args: ['init', '--bogus'], code: 2, printed: /bogus/ },
  ])('leeway ca $args exits $code', async ({ args, code, printed }) => {
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((text: string) => void lines.push(text));
    vi.spyOn(console, 'error').mockImplementation((text: string) => void lines.push(text));
    const out = join(dir, 'out');
    expect(await caCommand(args.map((a) => (a === 'OUT' ? out : a)))).toBe(code);
    expect(lines.join('\n')).toMatch(printed);
    if (code === 0) expect((await stat(join(out, 'ca-key.pem'))).mode & 0o777).toBe(0o600);
  });

  it('refuses a second init without --force and accepts it with --force', async () => {
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const errors: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((text: string) => void errors.push(text));
    expect(await caCommand(['init', '--out', dir])).toBe(0);
    const first = await readFile(join(dir, 'ca.pem'), 'utf8');
    expect(await caCommand(['init', '--out', dir])).toBe(1);
    expect(errors.join()).toMatch(/already exists; use --force/);
    expect(await readFile(join(dir, 'ca.pem'), 'utf8')).toBe(first);
    expect(await caCommand(['init', '--out', dir, '--force'])).toBe(0);
    expect(await readFile(join(dir, 'ca.pem'), 'utf8')).not.toBe(first);
  });
});

async function file(name: string, content: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content, { mode: 0o600 });
  return path;
}

async function folder(name: string): Promise<string> {
  const path = join(dir, name);
  await mkdir(path);
  return path;
}
