/**
 * Node socket and TLS error codes → Leeway error codes, in one table (issue 3 item 10), and the
 * plain words an error page shows for an origin certificate that failed verification (issue 4
 * item 4). The proxy looks up `error.code`; it never matches on messages.
 */
import { LeewayError, isLeewayError } from '../errors.js';
import type { LeewayErrorCode } from '../errors.js';

const NODE_CODES: Readonly<Record<string, LeewayErrorCode>> = {
  ECONNREFUSED: 'LEEWAY_ERR_UPSTREAM_REFUSED',
  ENOTFOUND: 'LEEWAY_ERR_UPSTREAM_HOST_NOT_FOUND',
  EAI_AGAIN: 'LEEWAY_ERR_UPSTREAM_HOST_NOT_FOUND',
  EAI_NONAME: 'LEEWAY_ERR_UPSTREAM_HOST_NOT_FOUND',
  ETIMEDOUT: 'LEEWAY_ERR_UPSTREAM_TIMEOUT',
  ESOCKETTIMEDOUT: 'LEEWAY_ERR_UPSTREAM_TIMEOUT',
  UND_ERR_CONNECT_TIMEOUT: 'LEEWAY_ERR_UPSTREAM_TIMEOUT',
  ECONNRESET: 'LEEWAY_ERR_UPSTREAM_RESET',
  EPIPE: 'LEEWAY_ERR_UPSTREAM_RESET',
  ECONNABORTED: 'LEEWAY_ERR_UPSTREAM_RESET',
  EHOSTUNREACH: 'LEEWAY_ERR_UPSTREAM',
  ENETUNREACH: 'LEEWAY_ERR_UPSTREAM',
  HPE_INVALID_CONSTANT: 'LEEWAY_ERR_UPSTREAM',
};

/**
 * OpenSSL verification codes (and Node's host-name check) in words. The page title already says
 * "Origin certificate is not valid:", so each entry completes that sentence.
 */
export const UPSTREAM_TLS_PROBLEMS: Readonly<Record<string, string>> = {
  CERT_HAS_EXPIRED: 'the certificate has expired',
  CERT_NOT_YET_VALID: 'the certificate is not valid yet (or a clock is wrong)',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the certificate was issued for another name',
  HOSTNAME_MISMATCH: 'the certificate was issued for another name',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the certificate is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'the certificate chain ends in a root nobody here trusts',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the certificate is signed by an unknown authority (or the site sends an incomplete chain)',
  UNABLE_TO_GET_ISSUER_CERT: 'the issuer of the certificate is unknown',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the certificate is signed by an authority that is not trusted here',
  CERT_SIGNATURE_FAILURE: 'the certificate signature is invalid',
  CERT_REVOKED: 'the certificate has been revoked',
  CERT_UNTRUSTED: 'the certificate is not trusted for this purpose',
  CERT_REJECTED: 'the certificate was rejected',
  INVALID_CA: 'a certificate in the chain is not allowed to act as an authority',
  PATH_LENGTH_EXCEEDED: 'the certificate chain is longer than its authority allows',
  INVALID_PURPOSE: 'the certificate is not meant for web servers',
  ERR_SSL_WRONG_VERSION_NUMBER: 'the origin does not speak TLS on this port',
  EPROTO: 'the TLS handshake with the origin failed',
};

/** Said for a TLS failure with a code the table above does not name (OpenSSL adds codes). */
const OTHER_TLS_PROBLEM = 'the TLS connection to the origin failed';

function isTlsCode(nodeCode: string): boolean {
  return nodeCode in UPSTREAM_TLS_PROBLEMS || nodeCode.startsWith('ERR_SSL_') || nodeCode.startsWith('ERR_TLS_');
}

/** Turn anything thrown while reaching an origin into a LeewayError. */
export function upstreamError(error: unknown, host: string): LeewayError {
  if (isLeewayError(error)) return error;
  const nodeCode = typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : '';
  if (isTlsCode(nodeCode)) {
    return new LeewayError('LEEWAY_ERR_UPSTREAM_TLS', UPSTREAM_TLS_PROBLEMS[nodeCode] ?? OTHER_TLS_PROBLEM, { host, nodeCode }, { cause: error });
  }
  const code = NODE_CODES[nodeCode] ?? 'LEEWAY_ERR_UPSTREAM';
  const message = code === 'LEEWAY_ERR_UPSTREAM_HOST_NOT_FOUND' ? 'host not found' : nodeCode || 'origin error';
  return new LeewayError(code, message, { host, nodeCode }, { cause: error });
}
