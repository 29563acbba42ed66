/**
 * The interception root CA: made once by `leeway ca init`, loaded by the proxy at start.
 * The private key is held only as a KeyObject (nothing to print) and never logged.
 */
import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import forge from 'node-forge';
import { LeewayError } from '../errors.js';
import { buildTbs, randomSerialHex, signNative, subjectDerOf } from './x509-signing.js';

export const DEFAULT_CA_NAME = 'Leeway Interception CA';
export const DEFAULT_CA_DAYS = 3650;
export const CA_CERT_FILE = 'ca.pem';
export const CA_KEY_FILE = 'ca-key.pem';

const DAY_MS = 86_400_000;

export interface GenerateCaOptions {
  readonly name?: string;
  readonly days?: number;
  readonly now?: Date;
}

export interface GeneratedCa {
  readonly certPem: string;
  readonly keyPem: string;
}

/** A CA ready to sign leaves. */
export interface LoadedCa {
  readonly certPem: string;
  readonly certDer: Buffer;
  readonly key: KeyObject;
  /** The CA's subject Name as DER, reused verbatim as each leaf's issuer. */
  readonly subjectDer: Buffer;
  /** SHA-1 of the CA public key (RFC 5280 §4.2.1.2 method 1), as binary string for forge. */
  readonly keyIdentifier: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subjectName: string;
  /** SHA-256 fingerprint, for logs and the deployment instructions. */
  readonly fingerprint256: string;
  /** Non-fatal problems found while loading (e.g. a key file readable by others). */
  readonly warnings: readonly string[];
}

export function generateCa(options: GenerateCaOptions = {}): GeneratedCa {
  const name = options.name ?? DEFAULT_CA_NAME;
  const days = options.days ?? DEFAULT_CA_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > 36_500) {
    throw new LeewayError('LEEWAY_ERR_CONFIG', `--days must be a whole number of days between 1 and 36500, got ${days}`);
  }
  if (name.trim() === '' || name.length > 64) {
    throw new LeewayError('LEEWAY_ERR_CONFIG', 'the CA name must be 1 to 64 characters (X.520 ub-common-name)');
  }
  const now = options.now ?? new Date();
  // Native key generation: ~200 ms against ~2 s for forge's JS RSA (FIELD-NOTES).
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = randomSerialHex();
  // Backdated a day so clients with a slow clock accept it at once.
  cert.validity.notBefore = new Date(now.getTime() - DAY_MS);
  cert.validity.notAfter = new Date(now.getTime() + days * DAY_MS);
  const subject = [
    { name: 'commonName', value: name },
    { name: 'organizationName', value: 'Leeway' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  const certPem = signNative(buildTbs(cert, 'rsa-sha256'), 'rsa-sha256', privateKey);
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certPem, keyPem };
}

/**
 * Writes ca.pem (0644) and ca-key.pem (0600) into `dir`. The key file is created with its mode
 * (O_EXCL), never chmod-ed afterwards, so it is not readable by others even for an instant.
 */
export async function writeCa(dir: string, ca: GeneratedCa, options: { force?: boolean } = {}): Promise<{ certPath: string; keyPath: string }> {
  const certPath = join(dir, CA_CERT_FILE);
  const keyPath = join(dir, CA_KEY_FILE);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  if (options.force !== true) {
    for (const path of [certPath, keyPath]) {
      if (await exists(path)) {
        throw new LeewayError('LEEWAY_ERR_CA', `${path} already exists; use --force to replace the CA (every browser must then trust the new one)`, { path });
      }
    }
  } else {
    // Unlink, then create afresh: opening an existing file would keep its old, maybe wider, mode.
    for (const path of [certPath, keyPath]) await unlink(path).catch(ignoreMissing);
  }
  await writeNewFile(keyPath, ca.keyPem, 0o600);
  await writeNewFile(certPath, ca.certPem, 0o644);
  return { certPath, keyPath };
}

async function writeNewFile(path: string, content: string, mode: number): Promise<void> {
  const handle = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, mode);
  try {
    await handle.writeFile(content, 'utf8');
  } finally {
    await handle.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

function ignoreMissing(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
}

async function readCaFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const detail =
      code === 'ENOENT' ? 'not found (create one with `leeway ca init`)'
      : code === 'EACCES' || code === 'EPERM' ? 'not readable by this user'
      : code === 'EISDIR' ? 'is a directory'
      : `unreadable (${code ?? 'unknown error'})`;
    throw new LeewayError('LEEWAY_ERR_CA', `CA ${what} ${path}: ${detail}`, { path }, { cause: error });
  }
}

export async function loadCa(certPath: string, keyPath: string, options: { now?: Date } = {}): Promise<LoadedCa> {
  const certPem = await readCaFile(certPath, 'certificate');
  const keyPem = await readCaFile(keyPath, 'key');
  const warnings: string[] = [];
  const keyStat = await stat(keyPath);
  if (process.platform !== 'win32' && (keyStat.mode & 0o077) !== 0) {
    warnings.push(`CA key ${keyPath} is readable by other users (mode ${(keyStat.mode & 0o777).toString(8)}); chmod 600 it`);
  }
  const ca = caFromPem(certPem, keyPem, { certPath, keyPath, now: options.now });
  return { ...ca, warnings: [...ca.warnings, ...warnings] };
}

/** Validates and prepares a CA given as PEM text (used by loadCa and by tests). */
export function caFromPem(certPem: string, keyPem: string, where: { certPath?: string; keyPath?: string; now?: Date } = {}): LoadedCa {
  const certPath = where.certPath ?? 'certificate';
  const keyPath = where.keyPath ?? 'key';
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch (error) {
    throw new LeewayError('LEEWAY_ERR_CA', `CA certificate ${certPath}: not a PEM X.509 certificate`, { path: certPath }, { cause: error });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (error) {
    // The message of the cause is not passed on: it could quote part of the key.
    throw new LeewayError('LEEWAY_ERR_CA', `CA key ${keyPath}: not an unencrypted PEM private key`, { path: keyPath }, { cause: error instanceof Error ? new Error(error.name) : undefined });
  }
  if (!x509.ca) {
    throw new LeewayError('LEEWAY_ERR_CA', `CA certificate ${certPath}: not a CA certificate (basicConstraints CA:TRUE missing)`, { path: certPath });
  }
  if (!x509.checkPrivateKey(key)) {
    throw new LeewayError('LEEWAY_ERR_CA', `CA key ${keyPath} does not match the certificate ${certPath}`, { certPath, keyPath });
  }
  if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'ec') {
    throw new LeewayError('LEEWAY_ERR_CA', `CA key ${keyPath}: ${String(key.asymmetricKeyType)} keys are not supported (RSA or EC)`, { path: keyPath });
  }
  const now = where.now ?? new Date();
  const notBefore = new Date(x509.validFrom);
  const notAfter = new Date(x509.validTo);
  if (notAfter.getTime() <= now.getTime()) {
    throw new LeewayError('LEEWAY_ERR_CA', `CA certificate ${certPath} expired on ${notAfter.toISOString()}`, { path: certPath });
  }
  const warnings: string[] = [];
  if (notAfter.getTime() - now.getTime() < 30 * DAY_MS) warnings.push(`CA certificate ${certPath} expires on ${notAfter.toISOString()}`);
  const certDer = x509.raw;
  const spkiDer = x509.publicKey.export({ type: 'spki', format: 'der' });
  return {
    certPem: x509.toString(),
    certDer,
    key,
    subjectDer: subjectDerOf(certDer),
    keyIdentifier: createHash('sha1').update(subjectPublicKeyBits(spkiDer)).digest().toString('binary'),
    notBefore,
    notAfter,
    subjectName: x509.subject.replace(/\n/g, ', '),
    fingerprint256: x509.fingerprint256,
    warnings,
  };
}

/** The BIT STRING contents of a SubjectPublicKeyInfo: what RFC 5280's key identifier hashes. */
function subjectPublicKeyBits(spkiDer: Buffer): Buffer {
  // forge accepts an options object here (its types say boolean); without it forge would parse
  // the BIT STRING's contents as ASN.1 and we would lose the raw bytes.
  const fromDer = forge.asn1.fromDer as unknown as (bytes: string, options: { decodeBitStrings: boolean }) => forge.asn1.Asn1;
  const spki = fromDer(spkiDer.toString('binary'), { decodeBitStrings: false });
  const bits = (spki.value as forge.asn1.Asn1[])[1];
  if (bits === undefined || typeof bits.value !== 'string') throw new Error('malformed SubjectPublicKeyInfo');
  // Drop the unused-bits byte.
  return Buffer.from(bits.value.slice(1), 'binary');
}
