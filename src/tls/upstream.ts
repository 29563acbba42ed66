/**
 * Trust toward origins. An intercepted request is sent on over TLS verified against the system
 * roots plus an optional extra bundle (settings.tls.extraCaBundle); an origin whose certificate
 * fails gets an error page naming the problem, never a silent pass (PRODUCT.md, security rules).
 */
import { Agent as HttpsAgent } from 'node:https';
import { readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { LeewayError } from '../errors.js';

/** Reads and checks a PEM bundle; every certificate in it must parse. */
export async function loadExtraCaBundle(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new LeewayError('LEEWAY_ERR_CA', `extra CA bundle ${path}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`, { path }, { cause: error });
  }
  const certificates = splitPemBundle(text);
  if (certificates.length === 0) throw new LeewayError('LEEWAY_ERR_CA', `extra CA bundle ${path}: no PEM certificate found`, { path });
  certificates.forEach((pem, index) => {
    try {
      new X509Certificate(pem);
    } catch (error) {
      throw new LeewayError('LEEWAY_ERR_CA', `extra CA bundle ${path}: certificate #${index + 1} does not parse`, { path }, { cause: error });
    }
  });
  return text;
}

export function splitPemBundle(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** System roots plus the extra bundle: passing `ca` replaces Node's defaults, so both are listed. */
export function upstreamTrust(extraCaBundle?: string): string[] {
  return extraCaBundle === undefined ? [...rootCertificates] : [...rootCertificates, ...splitPemBundle(extraCaBundle)];
}

export interface UpstreamAgentOptions {
  /** PEM text of extra trusted CAs (not a path). */
  readonly extraCaBundle?: string;
  /** Below the origin's keep-alive timeout (Node servers: 5 s) or a reused socket meets ECONNRESET. */
  readonly idleTimeoutMs?: number;
  readonly maxSockets?: number;
}

/** A keep-alive agent whose every connection verifies the origin's chain and host name. */
export function createUpstreamAgent(options: UpstreamAgentOptions = {}): HttpsAgent {
  return new HttpsAgent({
    keepAlive: true,
    timeout: options.idleTimeoutMs ?? 4_000,
    maxSockets: options.maxSockets ?? 256,
    maxFreeSockets: 64,
    ca: upstreamTrust(options.extraCaBundle),
    rejectUnauthorized: true,
    // HTTP/1.1 toward the origin: the client side of an intercepted connection speaks only that.
    ALPNProtocols: ['http/1.1'],
  });
}

/** OpenSSL verification codes (and Node's host-name check) in words, for the error page. */
export const UPSTREAM_TLS_ERRORS: Readonly<Record<string, string>> = {
  CERT_HAS_EXPIRED: 'The site’s certificate has expired.',
  CERT_NOT_YET_VALID: 'The site’s certificate is not valid yet (or a clock is wrong).',
  ERR_TLS_CERT_ALTNAME_INVALID: 'The site’s certificate was issued for a different host name.',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'The site uses a self-signed certificate.',
  SELF_SIGNED_CERT_IN_CHAIN: 'The site’s certificate chain ends in a root nobody here trusts.',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'The site’s certificate is signed by an unknown authority (or the site sends an incomplete chain).',
  UNABLE_TO_GET_ISSUER_CERT: 'The issuer of the site’s certificate is unknown.',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'The site’s certificate is signed by an authority that is not trusted here.',
  CERT_SIGNATURE_FAILURE: 'The signature on the site’s certificate is invalid.',
  CERT_REVOKED: 'The site’s certificate has been revoked.',
  CERT_UNTRUSTED: 'The site’s certificate is not trusted for this purpose.',
  CERT_REJECTED: 'The site’s certificate was rejected.',
  INVALID_CA: 'A certificate in the site’s chain is not allowed to act as an authority.',
  PATH_LENGTH_EXCEEDED: 'The site’s certificate chain is longer than its authority allows.',
  INVALID_PURPOSE: 'The site’s certificate is not meant for web servers.',
  HOSTNAME_MISMATCH: 'The site’s certificate was issued for a different host name.',
  ERR_SSL_WRONG_VERSION_NUMBER: 'The site did not answer with TLS on this port.',
  EPROTO: 'The TLS handshake with the site failed.',
};

export function isUpstreamTlsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code in UPSTREAM_TLS_ERRORS || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'));
}

/** A short explanation for the error page, or undefined when the error is not about TLS. */
export function explainUpstreamTlsError(error: unknown): string | undefined {
  if (!isUpstreamTlsError(error)) return undefined;
  const code = (error as { code: string }).code;
  return UPSTREAM_TLS_ERRORS[code] ?? 'The TLS connection to the site failed.';
}

/** The LeewayError the pipeline answers with (502, LEEWAY_ERR_UPSTREAM_TLS) for an upstream TLS failure. */
export function upstreamTlsError(host: string, error: unknown): LeewayError {
  const code = (error as { code?: unknown } | null)?.code;
  return new LeewayError('LEEWAY_ERR_UPSTREAM_TLS', explainUpstreamTlsError(error) ?? 'The TLS connection to the site failed.', { host, tlsCode: typeof code === 'string' ? code : 'unknown' }, { cause: error });
}
