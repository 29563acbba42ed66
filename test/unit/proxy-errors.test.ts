/** Node socket/TLS error codes → Leeway codes and statuses (issue 3 item 10), table-driven. */
import { describe, expect, it } from 'vitest';
import { UPSTREAM_TLS_PROBLEMS, upstreamError } from '../../src/proxy/upstream-errors.js';
import { LeewayError } from '../../src/errors.js';

const cases: [string, string, number][] = [
  ['ECONNREFUSED', 'LEEWAY_ERR_UPSTREAM_REFUSED', 502],
  ['ENOTFOUND', 'LEEWAY_ERR_UPSTREAM_HOST_NOT_FOUND', 502],
  ['EAI_AGAIN', 'LEEWAY_ERR_UPSTREAM_HOST_NOT_FOUND', 502],
  ['ETIMEDOUT', 'LEEWAY_ERR_UPSTREAM_TIMEOUT', 504],
  ['ECONNRESET', 'LEEWAY_ERR_UPSTREAM_RESET', 502],
  ['CERT_HAS_EXPIRED', 'LEEWAY_ERR_UPSTREAM_TLS', 502],
  ['ERR_TLS_CERT_ALTNAME_INVALID', 'LEEWAY_ERR_UPSTREAM_TLS', 502],
  ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'LEEWAY_ERR_UPSTREAM_TLS', 502],
  ['DEPTH_ZERO_SELF_SIGNED_CERT', 'LEEWAY_ERR_UPSTREAM_TLS', 502],
  ['SOMETHING_NEW', 'LEEWAY_ERR_UPSTREAM', 502],
];

describe('upstreamError', () => {
  for (const [nodeCode, code, status] of cases) {
    it(`${nodeCode} → ${code} (${status})`, () => {
      const error = upstreamError(Object.assign(new Error('irrelevant message'), { code: nodeCode }), 'origin.test');
      expect(error.code).toBe(code);
      expect(error.status).toBe(status);
      expect(error.context.nodeCode).toBe(nodeCode);
    });
  }

  it('names certificate problems in plain words for the error page', () => {
    expect(upstreamError(Object.assign(new Error('x'), { code: 'CERT_HAS_EXPIRED' }), 'h').message).toBe('the certificate has expired');
  });

  it.each([
    ['CERT_HAS_EXPIRED', /expired/],
    ['ERR_TLS_CERT_ALTNAME_INVALID', /another name/],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', /self-signed/],
    ['SELF_SIGNED_CERT_IN_CHAIN', /root nobody here trusts/],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', /unknown authority/],
    ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', /not trusted here/],
    ['CERT_NOT_YET_VALID', /not valid yet/],
    ['EPROTO', /handshake/],
    ['ERR_SSL_SOMETHING_NEW', /TLS connection to the origin failed/],
    ['ERR_TLS_SOMETHING_NEW', /TLS connection to the origin failed/],
  ])('%s is a certificate or TLS problem explained on the page', (nodeCode, text) => {
    const error = upstreamError(Object.assign(new Error('x'), { code: nodeCode }), 'h.test');
    expect(error).toMatchObject({ code: 'LEEWAY_ERR_UPSTREAM_TLS', status: 502, context: { host: 'h.test', nodeCode } });
    expect(error.message).toMatch(text);
  });

  it('completes "Origin certificate is not valid:" with a short lower-case phrase for every code', () => {
    for (const text of Object.values(UPSTREAM_TLS_PROBLEMS)) expect(text).toMatch(/^[a-z][^.]{10,100}$/);
  });

  it('never matches on the message', () => {
    expect(upstreamError(new Error('connect ECONNREFUSED 127.0.0.1:1'), 'h').code).toBe('LEEWAY_ERR_UPSTREAM');
  });

  it('passes LeewayErrors through', () => {
    const original = new LeewayError('LEEWAY_ERR_LOOP', 'loop');
    expect(upstreamError(original, 'h')).toBe(original);
  });
});
