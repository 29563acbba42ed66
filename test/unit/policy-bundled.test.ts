/** The bundled policies: editor schema line, clean load, the names other parts depend on. */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadPolicy } from '../../src/policy/load.js';
import { NetworkSet } from '../../src/net/cidr.js';

describe('bundled policies/', () => {
  const files = readdirSync('policies').filter((name) => name.endsWith('.yaml'));

  it.each(files)('%s starts with the yaml-language-server schema line', (name) => {
    expect(readFileSync(`policies/${name}`, 'utf8').split('\n')[0]).toBe('# yaml-language-server: $schema=../schema/policy.schema.json');
  });

  it('loads without errors or warnings and names what dashboards expect', async () => {
    const loaded = await loadPolicy('policies');
    expect(loaded.ok).toBe(true);
    if (!loaded.ok) return;
    expect(loaded.warnings).toEqual([]);
    const policy = loaded.policy;
    expect(policy.categoryNames).toEqual(expect.arrayContaining(['business-networking', 'social-leisure', 'finance', 'health', 'malware', 'phishing']));
    expect(policy.categoryKinds['social-leisure']).toBe('leisure');
    expect(policy.categoryKinds['business-networking']).toBe('business');
    expect(policy.siteNames).toEqual(expect.arrayContaining(['facebook', 'instagram', 'tiktok', 'x', 'youtube', 'reddit', 'linkedin', 'xing', 'viadeo']));
    expect(policy.groupNames).toEqual(expect.arrayContaining(['staff', 'sales']));
    expect(policy.settings.interception.doNotInspect).toEqual(['finance', 'health']);
    expect(policy.isDoNotInspect('www.paypal.com')).toBe(true);
  });

  it('keeps proxy clients away from the proxy host and link-local addresses, not from the intranet', async () => {
    const loaded = await loadPolicy('policies');
    if (!loaded.ok) throw new Error('bundled policy does not load');
    const deny = NetworkSet.of(loaded.policy.settings.proxy.egress.deny);
    for (const address of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', '169.254.169.254', 'fe80::1']) expect(deny.has(address), address).toBe(true);
    for (const address of ['10.1.2.3', '192.168.1.10', '172.16.0.5', '93.184.216.34', '2001:db8::1']) expect(deny.has(address), address).toBe(false);
  });

  it('hashes the content, the same on every load', async () => {
    const [a, b] = await Promise.all([loadPolicy('policies'), loadPolicy('policies')]);
    expect(a.ok && b.ok).toBe(true);
    if (a.ok && b.ok) expect(a.policy.hash).toBe(b.policy.hash);
  });
});
