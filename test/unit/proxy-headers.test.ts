/** Header rewriting (RFC 9110 §7.6.1) and request-target parsing (RFC 9112 §3.2), table-driven. */
import { describe, expect, it } from 'vitest';
import { announcesBody, forwardHeaders, rawHeader } from '../../src/proxy/headers.js';
import { parseAbsoluteTarget, parseAuthority, originFormTarget } from '../../src/proxy/target.js';

function names(raw: string[]): string[] {
  return raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
}

describe('forwardHeaders', () => {
  const cases: { name: string; raw: string[]; options?: Parameters<typeof forwardHeaders>[1]; kept: string[]; dropped: string[]; via: string }[] = [
    {
      name: 'drops the fixed hop-by-hop set and proxy credentials',
      raw: ['Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'Proxy-Connection', 'keep-alive', 'Proxy-Authorization', 'Basic x', 'TE', 'trailers', 'Trailer', 'X', 'Upgrade', 'h2c', 'Accept', '*/*'],
      kept: ['accept'],
      dropped: ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade'],
      via: '1.1 leeway',
    },
    {
      name: 'drops headers named in Connection, case-insensitively',
      raw: ['Connection', 'close, X-Secret ,x-other', 'X-Secret', '1', 'X-OTHER', '2', 'X-Kept', '3'],
      kept: ['x-kept'],
      dropped: ['x-secret', 'x-other'],
      via: '1.1 leeway',
    },
    {
      name: 'tells the hop-by-hop names in any case, and keeps names of the same length that differ',
      raw: [
        'CONNECTION', 'close', 'kEEP-aLIVE', 't', 'PROXY-CONNECTION', 'x', 'proxy-AUTHORIZATION', 'Basic x', 'Proxy-Authenticate', 'Basic',
        'tE', 'trailers', 'TRAILER', 'X', 'UPGRADE', 'h2c', 'TRANSFER-ENCODING', 'chunked', 'VIA', '1.0 a',
        // Same lengths as hop-by-hop names, one character apart: forwarded.
        'connectiom', '1', 'keep_alive', '2', 'tf', '3', 'upgrades', '4', 'proxy-connectiox', '5', 'transfer-encodinh', '6',
      ],
      options: { keepTransferEncoding: false },
      kept: ['connectiom', 'keep_alive', 'tf', 'upgrades', 'proxy-connectiox', 'transfer-encodinh'],
      dropped: ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'upgrade', 'transfer-encoding'],
      via: '1.0 a, 1.1 leeway',
    },
    {
      name: 'appends to an existing Via, merging repeated ones',
      raw: ['Via', '1.0 fred', 'Via', '1.1 p.example'],
      kept: [],
      dropped: [],
      via: '1.0 fred, 1.1 p.example, 1.1 leeway',
    },
    {
      name: 'drops Transfer-Encoding only when asked',
      raw: ['Transfer-Encoding', 'chunked'],
      options: { keepTransferEncoding: false },
      kept: [],
      dropped: ['transfer-encoding'],
      via: '1.1 leeway',
    },
    {
      name: 'drops the trusted identity header',
      raw: ['X-Authenticated-User', 'alice', 'Accept', '*/*'],
      options: { keepTransferEncoding: true, drop: 'x-authenticated-user' },
      kept: ['accept'],
      dropped: ['x-authenticated-user'],
      via: '1.1 leeway',
    },
    {
      name: 'drops Expect when asked (the proxy has already answered 100-continue to the client)',
      raw: ['Expect', '100-continue', 'Content-Length', '5'],
      options: { keepTransferEncoding: true, dropExpect: true },
      kept: ['content-length'],
      dropped: ['expect'],
      via: '1.1 leeway',
    },
    {
      name: 'keeps Expect by default',
      raw: ['Expect', '100-continue'],
      kept: ['expect'],
      dropped: [],
      via: '1.1 leeway',
    },
    {
      name: 'keeps Upgrade for a WebSocket handshake, with Connection: Upgrade only',
      raw: ['Connection', 'Upgrade', 'Upgrade', 'websocket', 'Sec-WebSocket-Key', 'k'],
      options: { keepTransferEncoding: false, keepUpgrade: true },
      kept: ['connection', 'upgrade', 'sec-websocket-key'],
      dropped: [],
      via: '1.1 leeway',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const out = forwardHeaders(c.raw, c.options ?? { keepTransferEncoding: true });
      const present = names(out);
      for (const name of c.kept) expect(present).toContain(name);
      for (const name of c.dropped) expect(present).not.toContain(name);
      expect(rawHeader(out, 'via')).toBe(c.via);
    });
  }

  it('replaces Host with the target authority when given', () => {
    const out = forwardHeaders(['Host', 'evil.example', 'Accept', '*/*'], { keepTransferEncoding: true, host: 'origin.test:8080' });
    expect(out.filter((_, i) => i % 2 === 0 && out[i]?.toLowerCase() === 'host')).toHaveLength(1);
    expect(rawHeader(out, 'host')).toBe('origin.test:8080');
  });
});

describe('parseAbsoluteTarget', () => {
  const cases: [string, ReturnType<typeof parseAbsoluteTarget>][] = [
    ['http://Example.COM/a/b?q=1', { scheme: 'http', host: 'example.com', port: 80, path: '/a/b?q=1', pathOnly: '/a/b' }],
    ['http://example.com', { scheme: 'http', host: 'example.com', port: 80, path: '/', pathOnly: '/' }],
    ['http://example.com?x', { scheme: 'http', host: 'example.com', port: 80, path: '/?x', pathOnly: '/' }],
    ['http://example.com.:8080/p#frag', { scheme: 'http', host: 'example.com', port: 8080, path: '/p', pathOnly: '/p' }],
    ['https://[::1]:8443/x', { scheme: 'https', host: '::1', port: 8443, path: '/x', pathOnly: '/x' }],
    ['http://user:pw@example.com/', undefined],
    ['http://example.com:99999/', undefined],
    ['http://exa mple.com/', undefined],
    ['ftp://example.com/', undefined],
    ['/relative', undefined],
    ['http:///nohost', undefined],
  ];
  for (const [input, expected] of cases) {
    it(`${input} → ${expected === undefined ? 'refused' : `${expected.host}:${expected.port}`}`, () => {
      expect(parseAbsoluteTarget(input)).toEqual(expected);
    });
  }
});

describe('parseAuthority (CONNECT)', () => {
  const cases: [string, { host: string; port: number } | undefined][] = [
    ['example.com:443', { host: 'example.com', port: 443 }],
    ['[2001:db8::1]:443', { host: '2001:db8::1', port: 443 }],
    ['10.0.0.1:25', { host: '10.0.0.1', port: 25 }],
    ['example.com', { host: 'example.com', port: 443 }],
    ['example.com:0', undefined],
    ['example.com:abc', undefined],
    ['2001:db8::1:443', undefined],
    ['[not-ip]:443', undefined],
    ['', undefined],
  ];
  for (const [input, expected] of cases) {
    it(`${JSON.stringify(input)}`, () => {
      expect(parseAuthority(input, 443)).toEqual(expected);
    });
  }

  it('answers the same text again from its memo, per default port, and stays right past its bound', () => {
    const first = parseAuthority('Memo.Example', 443);
    expect(first).toEqual({ host: 'memo.example', port: 443 });
    expect(parseAuthority('Memo.Example', 443)).toBe(first);
    expect(parseAuthority('Memo.Example', 80)).toEqual({ host: 'memo.example', port: 80 });
    // The memo starts afresh when full; answers do not change.
    for (let i = 0; i < 5_000; i += 1) expect(parseAuthority(`h${i}.example:${1 + (i % 65535)}`, 443)).toEqual({ host: `h${i}.example`, port: 1 + (i % 65535) });
    expect(parseAuthority('Memo.Example', 443)).toEqual(first);
    expect(parseAuthority('bad host:443', 443)).toBeUndefined();
    expect(parseAuthority('bad host:443', 443)).toBeUndefined();
  });
});

describe('originFormTarget (intercepted requests)', () => {
  it('takes host and port from the CONNECT and splits the query', () => {
    expect(originFormTarget('https', 'site.example', 443, '/a?b=1')).toEqual({ scheme: 'https', host: 'site.example', port: 443, path: '/a?b=1', pathOnly: '/a' });
  });
});

describe('announcesBody (RFC 9112 §6.3)', () => {
  const cases: { raw: string[]; body: boolean }[] = [
    { raw: [], body: false },
    { raw: ['Content-Length', '0'], body: false },
    { raw: ['content-length', ' 0 '], body: false },
    { raw: ['Content-Length', '12'], body: true },
    { raw: ['Transfer-Encoding', 'chunked'], body: true },
    { raw: ['TRANSFER-ENCODING', 'gzip, chunked', 'Accept', '*/*'], body: true },
    { raw: ['Content-Type', 'text/plain', 'Accept', '*/*'], body: false },
  ];
  for (const c of cases) {
    it(`${JSON.stringify(c.raw)} → ${c.body}`, () => {
      expect(announcesBody(c.raw)).toBe(c.body);
    });
  }
});
