import { rootCertificates } from 'node:tls';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateCa } from '../../src/tls/ca.js';
import { loadExtraCaBundle, upstreamSecureContext, upstreamTrust } from '../../src/tls/upstream.js';

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

  it('builds one SecureContext from a valid bundle, none without one, and refuses a bad bundle at load', async () => {
    expect(await upstreamSecureContext(undefined)).toBeUndefined();
    const path = join(dir, 'roots.pem');
    await writeFile(path, extra);
    expect((await upstreamSecureContext(path))?.context).toBeDefined();
    await writeFile(path, 'not a certificate');
    await expect(upstreamSecureContext(path)).rejects.toMatchObject({ code: 'LEEWAY_ERR_CONFIG' });
  });

  it.each([
    { name: 'a valid bundle', content: () => extra, ok: true },
    { name: 'an empty file', content: () => '', ok: false },
    { name: 'a corrupt certificate', content: () => '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', ok: false },
  ])('loadExtraCaBundle with $name', async ({ content, ok }) => {
    const path = join(dir, 'bundle.pem');
    await writeFile(path, content());
    if (ok) expect(await loadExtraCaBundle(path)).toBe(content());
    else await expect(loadExtraCaBundle(path)).rejects.toMatchObject({ code: 'LEEWAY_ERR_CONFIG' });
  });

  it('names a missing bundle', async () => {
    await expect(loadExtraCaBundle(join(dir, 'missing.pem'))).rejects.toMatchObject({ code: 'LEEWAY_ERR_CONFIG', message: /ENOENT/ });
  });
});
