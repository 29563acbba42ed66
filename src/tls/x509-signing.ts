/**
 * Building and signing X.509 certificates: node-forge lays out the TBSCertificate, Node's native
 * crypto signs it. forge's pure-JS RSA signing costs 30-50 ms per certificate and blocks the event
 * loop; `crypto.sign` over the same bytes takes about half a millisecond (FIELD-NOTES, issue 4).
 */
import { randomBytes, sign, type KeyObject } from 'node:crypto';
import forge from 'node-forge';

const { asn1 } = forge;

// forge exports getTBSCertificate at run time but @types/node-forge does not declare it.
const getTbsCertificate = (forge.pki as unknown as { getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate;

const OID_SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';

/** Index of fields inside a v3 TBSCertificate (version [0] is present). */
const TBS_ISSUER = 3;
const TBS_SUBJECT = 5;
const TBS_SPKI = 6;

/**
 * A positive 128-bit serial as forge wants it (hex). forge writes the bytes raw: a leading 0x00
 * makes OpenSSL 3 reject the certificate and a first byte >= 0x80 makes the serial negative.
 */
export function randomSerialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = 0x01 + ((bytes[0] ?? 0) % 0x7f);
  return bytes.toString('hex');
}

export type SignatureAlgorithm = 'rsa-sha256' | 'ecdsa-sha256';

export function signatureAlgorithmFor(key: KeyObject): SignatureAlgorithm {
  if (key.asymmetricKeyType === 'rsa') return 'rsa-sha256';
  if (key.asymmetricKeyType === 'ec') return 'ecdsa-sha256';
  throw new Error(`unsupported CA key type ${String(key.asymmetricKeyType)} (RSA or EC expected)`);
}

function algorithmIdentifier(algorithm: SignatureAlgorithm): forge.asn1.Asn1 {
  const oid = algorithm === 'rsa-sha256' ? OID_SHA256_WITH_RSA : OID_ECDSA_WITH_SHA256;
  const parts = [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(oid).getBytes())];
  // RFC 4055 §5: RSA signature algorithms carry an explicit NULL; RFC 5758 §3.2: ECDSA carries none.
  if (algorithm === 'rsa-sha256') parts.push(asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''));
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, parts);
}

export interface TbsOverrides {
  /** The subject's SubjectPublicKeyInfo as DER: lets a leaf carry any key type forge cannot encode (EC). */
  readonly spkiDer?: Buffer;
  /** The issuer Name exactly as the CA certificate encodes it, so chains match byte for byte. */
  readonly issuerDer?: Buffer;
}

/**
 * The TBSCertificate of `cert` as ASN.1, with the signature algorithm set and the overrides
 * spliced in. `cert.publicKey` must hold some forge RSA key when `spkiDer` replaces it.
 */
export function buildTbs(cert: forge.pki.Certificate, algorithm: SignatureAlgorithm, overrides: TbsOverrides = {}): forge.asn1.Asn1 {
  const oid = algorithm === 'rsa-sha256' ? OID_SHA256_WITH_RSA : OID_ECDSA_WITH_SHA256;
  cert.siginfo.algorithmOid = oid;
  cert.signatureOid = oid;
  const tbs = getTbsCertificate(cert);
  const fields = tbs.value as forge.asn1.Asn1[];
  // forge writes RSA parameters as NULL for any OID it does not know; ECDSA must have none.
  fields[2] = algorithmIdentifier(algorithm);
  if (overrides.issuerDer !== undefined) fields[TBS_ISSUER] = asn1FromBuffer(overrides.issuerDer);
  if (overrides.spkiDer !== undefined) fields[TBS_SPKI] = asn1FromBuffer(overrides.spkiDer);
  return tbs;
}

export function asn1ToBuffer(node: forge.asn1.Asn1): Buffer {
  return Buffer.from(asn1.toDer(node).getBytes(), 'binary');
}

export function asn1FromBuffer(der: Buffer): forge.asn1.Asn1 {
  return asn1.fromDer(forge.util.createBuffer(der.toString('binary')));
}

/** Wraps a TBSCertificate and its signature into a Certificate (RFC 5280 §4.1) and returns PEM. */
export function assembleCertificatePem(tbs: forge.asn1.Asn1, algorithm: SignatureAlgorithm, signature: Buffer): string {
  const certificate = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    algorithmIdentifier(algorithm),
    // The leading 0x00 says the BIT STRING has no unused bits.
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, '\x00' + signature.toString('binary')),
  ]);
  return derToPem(asn1ToBuffer(certificate));
}

export function derToPem(der: Buffer, label = 'CERTIFICATE'): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Signs the TBSCertificate with Node's native crypto. */
export function signNative(tbs: forge.asn1.Asn1, algorithm: SignatureAlgorithm, issuerKey: KeyObject): string {
  const signature = sign('sha256', asn1ToBuffer(tbs), issuerKey);
  return assembleCertificatePem(tbs, algorithm, signature);
}

/** Signs with forge's pure-JS RSA: kept only so the benchmark can compare both in one run. */
export function signForge(tbs: forge.asn1.Asn1, issuerKey: forge.pki.rsa.PrivateKey): string {
  const md = forge.md.sha256.create();
  md.update(asn1.toDer(tbs).getBytes());
  const signature = Buffer.from(issuerKey.sign(md), 'binary');
  return assembleCertificatePem(tbs, 'rsa-sha256', signature);
}

/** The subject Name of a DER certificate, as DER, to reuse verbatim as a leaf's issuer. */
export function subjectDerOf(certDer: Buffer): Buffer {
  const certificate = asn1FromBuffer(certDer);
  const tbs = (certificate.value as forge.asn1.Asn1[])[0];
  const subject = (tbs?.value as forge.asn1.Asn1[] | undefined)?.[TBS_SUBJECT];
  if (subject === undefined) throw new Error('certificate has no subject');
  return asn1ToBuffer(subject);
}
