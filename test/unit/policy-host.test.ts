/** Host normalisation and suffix matching: case, trailing dot, IDN/punycode, IP literals, ports. */
import { beforeAll, describe, expect, it } from 'vitest';
import { DomainIndex, normalizeHost, parseDomainList } from '../../src/policy/host.js';
import { loadPolicy } from '../../src/policy/load.js';
import type { CompiledPolicy } from '../../src/policy/types.js';

describe('normalizeHost', () => {
  it.each([
    ['facebook.com', 'facebook.com'],
    ['FaceBook.COM', 'facebook.com'],
    ['facebook.com.', 'facebook.com'],
    ['WWW.Facebook.com.', 'www.facebook.com'],
    ['facebook.com:443', 'facebook.com'],
    ['facebook.com.:8080', 'facebook.com'],
    ['bücher.example', 'xn--bcher-kva.example'],
    ['BÜCHER.example', 'xn--bcher-kva.example'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['10.1.2.3', '10.1.2.3'],
    ['10.1.2.3:3128', '10.1.2.3'],
    ['[2001:DB8::1]', '2001:db8::1'],
    ['[2001:db8::1]:443', '2001:db8::1'],
    ['2001:DB8::1', '2001:db8::1'],
  ])('%s → %s', (raw, normal) => {
    expect(normalizeHost(raw)).toBe(normal);
  });
});

describe('DomainIndex suffix match on label boundaries', () => {
  const index = new DomainIndex<string>();
  index.add('facebook.com', 'fb');
  index.add('m.facebook.com', 'mobile');
  index.add('10.1.2.3', 'ip');
  index.add('2.3', 'not-an-ip');
  index.add('2001:db8::1', 'ip6');
  it.each([
    ['facebook.com', 'fb'],
    ['www.facebook.com', 'fb'],
    ['a.b.c.facebook.com', 'fb'],
    ['m.facebook.com', 'mobile'],
    ['x.m.facebook.com', 'mobile'],
    ['notfacebook.com', undefined],
    ['facebook.com.evil.example', undefined],
    ['com', undefined],
    ['10.1.2.3', 'ip'],
    ['110.1.2.3', undefined],
    // An IP literal never matches by suffix: 192.168.2.3 is not "under" the name entry 2.3.
    ['192.168.2.3', undefined],
    ['2001:db8::1', 'ip6'],
    ['2001:db8::2', undefined],
  ])('%s → %s', (host, value) => {
    expect(index.lookup(host)).toBe(value);
  });

  it('keeps the first definition of a domain', () => {
    const first = new DomainIndex<string>();
    expect(first.add('Example.com.', 'one')).toBe(true);
    expect(first.add('example.com', 'two')).toBe(false);
    expect(first.lookup('www.example.com')).toBe('one');
  });
});

describe('parseDomainList (SquidGuard/UT1 format)', () => {
  it('reads one domain a line, skipping comments and blank lines, flagging junk', () => {
    const parsed = parseDomainList('# header\nbank.example\n\n  pay.example  # inline\nnot a domain\nhttp://x/\r\nlast.example');
    expect(parsed.domains).toEqual(['bank.example', 'pay.example', 'last.example']);
    expect(parsed.bad).toEqual([
      { line: 5, text: 'not a domain' },
      { line: 6, text: 'http://x/' },
    ]);
  });
});

describe('CompiledPolicy.classify', () => {
  let policy: CompiledPolicy;
  beforeAll(async () => {
    const loaded = await loadPolicy('test/fixtures/policies-engine');
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    policy = loaded.policy;
  });

  it.each([
    ['www.facebook.com', 'social', 'facebook'],
    ['WWW.FACEBOOK.COM.', 'social', 'facebook'],
    ['www.facebook.com:443', 'social', 'facebook'],
    // The category comes from the most specific entry, the site from its own most specific entry.
    ['m.facebook.com', 'news', 'facebook'],
    ['touch.m.facebook.com', 'news', 'facebook'],
    ['notfacebook.com', undefined, undefined],
    ['shop.bücher.example', 'social', undefined],
    ['xn--bcher-kva.example', 'social', undefined],
    ['café.example', 'social', undefined],
    ['10.1.2.3', 'lan', undefined],
    ['[2001:db8::1]:443', 'lan', undefined],
    ['192.168.2.3', undefined, undefined],
    ['[2001:db8::1:1]', undefined, undefined],
    ['www.bank.example', 'finance', undefined],
    ['pay.example', 'finance', undefined],
    ['news.example', 'news', 'news-site'],
  ])('%s → category %s, site %s', (host, category, site) => {
    expect(policy.classify(host)).toEqual({ category, site });
  });

  it.each([
    ['online.bank.example', true],
    ['clinic.example', true],
    ['www.facebook.com', false],
    ['unknown.example', false],
  ])('isDoNotInspect(%s) = %s', (host, expected) => {
    expect(policy.isDoNotInspect(host)).toBe(expected);
  });
});
