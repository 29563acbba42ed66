/**
 * Per-host leaf certificates. All leaves share one key pair made at start (as mitmproxy does):
 * a key per host would cost 200 ms of RSA generation each, for no gain, since the CA key is
 * what protects the scheme. Leaves are short-lived and backdated a day for skewed client clocks.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { LeewayError } from '../errors.js';
import type { LoadedCa } from './ca.js';
import { buildTbs, randomSerialHex, signForge, signNative, signatureAlgorithmFor } from './x509-signing.js';

const DAY_MS = 86_400_000;
export const DEFAULT_LEAF_VALIDITY_DAYS = 30;

/**
 * EC P-256 by default: generation is ~0.04 ms and a server-side ECDSA signature per handshake is
 * several times cheaper than RSA-2048, which matters for the cached-host handshake. Chromium,
 * Firefox and curl accept ECDSA leaves under an RSA root. RSA stays for old clients.
 */
export type LeafKeyType = 'ec' | 'rsa';

export interface LeafKey {
  readonly type: LeafKeyType;
  /** PEM, because Node 20's tls.createSecureContext does not accept a KeyObject. */
  readonly privateKeyPem: string;
  readonly spkiDer: Buffer;
  readonly publicKey: KeyObject;
}

export function generateLeafKey(type: LeafKeyType = 'ec'): LeafKey {
  const { privateKey, publicKey } =
    type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    type,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    spkiDer: publicKey.export({ type: 'spki', format: 'der' }),
    publicKey,
  };
}

/**
 * Lower-case, no trailing dot, no IPv6 brackets. Rejects what cannot be a certificate name, so a
 * hostile SNI or CONNECT line never reaches the certificate builder.
 */
export function normaliseCertificateHost(host: string): string {
  let name = host.trim().toLowerCase();
  if (name.startsWith('[') && name.endsWith(']')) name = name.slice(1, -1);
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (isIP(name) !== 0) return name;
  const labels = name.split('.');
  const valid =
    name.length > 0 && name.length <= 253 && labels.every((label) => label.length > 0 && label.length <= 63 && /^[a-z0-9_-]+$/.test(label));
  if (!valid) throw new LeewayError('LEEWAY_ERR_BAD_REQUEST', 'not a host name a certificate can be made for', { host: name.slice(0, 255) });
  return name;
}

// forge needs some RSA public key to lay out the TBSCertificate; the real SPKI is spliced in after.
let placeholderKey: forge.pki.rsa.PublicKey | undefined;
function placeholderPublicKey(): forge.pki.rsa.PublicKey {
  placeholderKey ??= forge.pki.setRsaPublicKey(new forge.jsbn.BigInteger('1', 10), new forge.jsbn.BigInteger('65537', 10));
  return placeholderKey;
}

export interface MintOptions {
  /** Already normalised with normaliseCertificateHost. */
  readonly host: string;
  readonly ca: LoadedCa;
  readonly leafKey: LeafKey;
  /** Milliseconds since the epoch. */
  readonly now: number;
  readonly validityDays?: number;
  /** For the benchmark only: sign with forge's JS RSA and this CA key instead of native crypto. */
  readonly forgeCaKey?: forge.pki.rsa.PrivateKey;
}

export interface MintedCertificate {
  readonly certPem: string;
  readonly notAfter: number;
}

export function mintLeafCertificate(options: MintOptions): MintedCertificate {
  const { host, ca, leafKey, now } = options;
  const validityMs = (options.validityDays ?? DEFAULT_LEAF_VALIDITY_DAYS) * DAY_MS;
  // A leaf outliving its CA would be rejected by every client, so cap it at the CA's end.
  const notAfter = Math.min(now + validityMs, ca.notAfter.getTime());
  const cert = forge.pki.createCertificate();
  cert.publicKey = placeholderPublicKey();
  cert.serialNumber = randomSerialHex();
  cert.validity.notBefore = new Date(now - DAY_MS);
  cert.validity.notAfter = new Date(notAfter);
  const isAddress = isIP(host) !== 0;
  // CN is informational since RFC 6125 (SAN rules); X.520 caps it at 64 characters.
  cert.setSubject(host.length <= 64 ? [{ name: 'commonName', value: host }] : [{ name: 'organizationName', value: 'Leeway' }]);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    // RFC 5480 §3: keyEncipherment is for RSA key transport only, never with an EC key.
    { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: leafKey.type === 'rsa' },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [isAddress ? { type: 7, ip: host } : { type: 2, value: host }] },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.keyIdentifier },
  ]);
  const overrides = { spkiDer: leafKey.spkiDer, issuerDer: ca.subjectDer };
  if (options.forgeCaKey !== undefined) {
    return { certPem: signForge(buildTbs(cert, 'rsa-sha256', overrides), options.forgeCaKey), notAfter };
  }
  const algorithm = signatureAlgorithmFor(ca.key);
  return { certPem: signNative(buildTbs(cert, algorithm, overrides), algorithm, ca.key), notAfter };
}
