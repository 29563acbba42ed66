/**
 * Node socket and TLS error codes → Leeway error codes, in one table (issue 3 item 10).
 * The proxy looks up `error.code`; it never matches on messages.
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
  // Certificate problems: named on the error page so people and admins know what is wrong.
  CERT_HAS_EXPIRED: 'LEEWAY_ERR_UPSTREAM_TLS',
  CERT_NOT_YET_VALID: 'LEEWAY_ERR_UPSTREAM_TLS',
  ERR_TLS_CERT_ALTNAME_INVALID: 'LEEWAY_ERR_UPSTREAM_TLS',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'LEEWAY_ERR_UPSTREAM_TLS',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'LEEWAY_ERR_UPSTREAM_TLS',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'LEEWAY_ERR_UPSTREAM_TLS',
  SELF_SIGNED_CERT_IN_CHAIN: 'LEEWAY_ERR_UPSTREAM_TLS',
  CERT_REVOKED: 'LEEWAY_ERR_UPSTREAM_TLS',
  CERT_SIGNATURE_FAILURE: 'LEEWAY_ERR_UPSTREAM_TLS',
  ERR_SSL_WRONG_VERSION_NUMBER: 'LEEWAY_ERR_UPSTREAM_TLS',
};

/** Plain words for certificate problems, shown on the error page. */
const TLS_PROBLEMS: Readonly<Record<string, string>> = {
  CERT_HAS_EXPIRED: 'the certificate has expired',
  CERT_NOT_YET_VALID: 'the certificate is not valid yet',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the certificate was issued for another name',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the certificate is not signed by a trusted authority',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the certificate is not signed by a trusted authority',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the certificate is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'the certificate chain ends in an untrusted self-signed certificate',
  CERT_REVOKED: 'the certificate has been revoked',
  CERT_SIGNATURE_FAILURE: 'the certificate signature is invalid',
  ERR_SSL_WRONG_VERSION_NUMBER: 'the origin does not speak TLS on this port',
};

/** Turn anything thrown while reaching an origin into a LeewayError. */
export function upstreamError(error: unknown, host: string): LeewayError {
  if (isLeewayError(error)) return error;
  const nodeCode = typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : '';
  const code = NODE_CODES[nodeCode] ?? 'LEEWAY_ERR_UPSTREAM';
  const problem = TLS_PROBLEMS[nodeCode];
  const message = problem ?? (code === 'LEEWAY_ERR_UPSTREAM_HOST_NOT_FOUND' ? 'host not found' : nodeCode || 'origin error');
  return new LeewayError(code, message, { host, nodeCode }, { cause: error });
}
