import { createPacResolver } from 'pac-resolver';
import { QuickJS } from 'quickjs-wasi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderPac } from '../../src/pages/pac.js';
import { LeewayError } from '../../src/errors.js';

// Every host below is either caught before isInNet or is an address literal, so evaluating the
// PAC file performs no DNS lookup and no network traffic.
let qjs: QuickJS;
beforeAll(async () => {
  qjs = await QuickJS.create();
});
afterAll(() => {
  qjs.dispose();
});

const pac = renderPac({ proxy: 'proxy.corp.example:3128', bypass: ['.corp.example', '*.lab.example', 'wiki.partner.example', '100.64.0.0/10', '203.0.113.7', 'fd00::/8'] });

describe('renderPac evaluated by pac-resolver', () => {
  const cases: [string, string][] = [
    ['http://intranet/', 'DIRECT'],
    ['http://localhost:8080/x', 'DIRECT'],
    ['http://corp.example/', 'DIRECT'],
    ['https://hr.corp.example/', 'DIRECT'],
    ['https://a.b.corp.example/', 'DIRECT'],
    ['https://HR.Corp.Example./', 'DIRECT'],
    ['https://x.lab.example/', 'DIRECT'],
    ['https://wiki.partner.example/', 'DIRECT'],
    ['https://www.partner.example/', 'PROXY proxy.corp.example:3128'],
    ['https://notcorp.example/', 'PROXY proxy.corp.example:3128'],
    ['https://corp.example.evil.test/', 'PROXY proxy.corp.example:3128'],
    ['https://www.linkedin.com/feed', 'PROXY proxy.corp.example:3128'],
    ['http://10.1.2.3/', 'DIRECT'],
    ['http://172.16.0.1/', 'DIRECT'],
    ['http://172.31.255.255/', 'DIRECT'],
    ['http://172.32.0.1/', 'PROXY proxy.corp.example:3128'],
    ['http://192.168.1.1:8443/', 'DIRECT'],
    ['http://127.0.0.1:3000/', 'DIRECT'],
    ['http://100.64.1.1/', 'DIRECT'],
    ['http://100.128.0.1/', 'PROXY proxy.corp.example:3128'],
    ['http://203.0.113.7/', 'DIRECT'],
    ['http://203.0.113.8/', 'PROXY proxy.corp.example:3128'],
    ['http://8.8.8.8/', 'PROXY proxy.corp.example:3128'],
  ];
  it.each(cases)('%s → %s', async (url, expected) => {
    const find = createPacResolver(qjs, pac);
    expect(await find(url)).toBe(expected);
  });

  it('with an empty bypass list still sends private networks DIRECT', async () => {
    const find = createPacResolver(qjs, renderPac({ proxy: '127.0.0.1:3128', bypass: [] }));
    expect(await find('http://192.168.0.10/')).toBe('DIRECT');
    expect(await find('http://example.com/')).toBe('PROXY 127.0.0.1:3128');
  });

  it('names the IPv6 networks for browsers that have isInNetEx', () => {
    expect(pac).toContain('"fd00::/8"');
    expect(pac).toContain('"::1/128"');
  });
});

describe('renderPac refuses bad settings', () => {
  it.each([
    [{ proxy: 'no-port', bypass: [] }],
    [{ proxy: 'host:99999', bypass: [] }],
    [{ proxy: 'host:3128"; alert(1); "', bypass: [] }],
    [{ proxy: 'host:3128', bypass: ['bad host'] }],
    [{ proxy: 'host:3128', bypass: ['"); return "DIRECT'] }],
    [{ proxy: 'host:3128', bypass: ['10.0.0.0/33'] }],
  ])('%j', (o) => {
    expect(() => renderPac(o)).toThrow(LeewayError);
  });
});
