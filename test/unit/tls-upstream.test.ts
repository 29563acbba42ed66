import { rootCertificates } from 'node:tls';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateCa } from '../../src/tls/ca.js';
import { UPSTREAM_TLS_ERRORS, createUpstreamAgent, explainUpstreamTlsError, isUpstreamTlsError, loadExtraCaBundle, upstreamTlsError, upstreamTrust } from '../../src/tls/upstream.js';

const extra = generateCa({ name: 'Internal Root' }).certPem;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leeway-upstream-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('upstream trust', () => {
  it('keeps the system roots and adds the extra bundle', () => {
    expect(upstreamTrust()).toHaveLength(rootCertificates.length);
    const trust = upstreamTrust(extra + extra);
    expect(trust).toHaveLength(rootCertificates.length + 2);
    expect(trust.at(-1)?.trim()).toBe(extra.trim());
  });

  it('builds a keep-alive agent that verifies origins against that trust', () => {
    const agent = createUpstreamAgent({ extraCaBundle: extra });
    expect((agent as unknown as { keepAlive: boolean }).keepAlive).toBe(true);
    expect(agent.options.rejectUnauthorized).not.toBe(false);
    expect(agent.options.ca).toHaveLength(rootCertificates.length + 1);
    agent.destroy();
  });

  it.each([
    { name: 'a valid bundle', content: () => extra, ok: true },
    { name: 'an empty file', content: () => '', ok: false },
    { name: 'a corrupt certificate', content: () => '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', ok: false },
  ])('loadExtraCaBundle with $name', async ({ content, ok }) => {
    const path = join(dir, 'bundle.pem');
    await writeFile(path, content());
    if (ok) expect(await loadExtraCaBundle(path)).toBe(content());
    else await expect(loadExtraCaBundle(path)).rejects.toMatchObject({ code: 'LEEWAY_ERR_CA' });
  });

  it('names a missing bundle', async () => {
    await expect(loadExtraCaBundle(join(dir, 'missing.pem'))).rejects.toMatchObject({ code: 'LEEWAY_ERR_CA', message: /ENOENT/ });
  });
});

describe('upstream TLS errors', () => {
  it.each([
    ['CERT_HAS_EXPIRED', /expired/],
    ['ERR_TLS_CERT_ALTNAME_INVALID', /different host name/],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', /self-signed/],
    ['SELF_SIGNED_CERT_IN_CHAIN', /root nobody here trusts/],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', /unknown authority/],
    ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', /not trusted/],
    ['CERT_NOT_YET_VALID', /not valid yet/],
    ['ERR_SSL_SOMETHING_NEW', /TLS connection to the site failed/],
  ])('%s is explained', (code, text) => {
    const error = Object.assign(new Error('x'), { code });
    expect(isUpstreamTlsError(error)).toBe(true);
    expect(explainUpstreamTlsError(error)).toMatch(text);
    expect(upstreamTlsError('h.test', error)).toMatchObject({ code: 'LEEWAY_ERR_UPSTREAM_TLS', status: 502, context: { host: 'h.test', tlsCode: code } });
  });

  it.each(['ECONNREFUSED', 'ENOTFOUND', undefined])('%s is not a TLS error', (code) => {
    const error = Object.assign(new Error('x'), { code });
    expect(isUpstreamTlsError(error)).toBe(false);
    expect(explainUpstreamTlsError(error)).toBeUndefined();
  });

  it('has a sentence for every code', () => {
    for (const text of Object.values(UPSTREAM_TLS_ERRORS)) expect(text).toMatch(/^[A-Z].{10,100}\.$/);
  });
});
