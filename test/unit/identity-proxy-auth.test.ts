import { describe, expect, it } from 'vitest';
import { parseBasicProxyAuthorization, proxyAuthenticateHeader } from '../../src/identity/proxy-auth.js';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

describe('parseBasicProxyAuthorization', () => {
  const valid: [string, string, { user: string; password: string }][] = [
    ['plain', `Basic ${b64('alice:secret')}`, { user: 'alice', password: 'secret' }],
    ['scheme lower-case', `basic ${b64('alice:secret')}`, { user: 'alice', password: 'secret' }],
    ['scheme upper-case', `BASIC ${b64('alice:secret')}`, { user: 'alice', password: 'secret' }],
    ['password with colons', `Basic ${b64('bob:a:b:c')}`, { user: 'bob', password: 'a:b:c' }],
    ['empty password', `Basic ${b64('carol:')}`, { user: 'carol', password: '' }],
    ['utf-8 user', `Basic ${b64('zoë:mot de passe')}`, { user: 'zoë', password: 'mot de passe' }],
    ['extra whitespace', `  Basic   ${b64('dan:x')}  `, { user: 'dan', password: 'x' }],
    ['unpadded base64', `Basic ${b64('ab:c').replace(/=+$/, '')}`, { user: 'ab', password: 'c' }],
  ];
  it.each(valid)('%s', (_name, header, expected) => {
    expect(parseBasicProxyAuthorization(header)).toEqual(expected);
  });

  const invalid: [string, string | undefined][] = [
    ['absent', undefined],
    ['empty', ''],
    ['scheme only', 'Basic'],
    ['scheme and space', 'Basic   '],
    ['other scheme', `Bearer ${b64('alice:secret')}`],
    ['no colon', `Basic ${b64('alicesecret')}`],
    ['empty user', `Basic ${b64(':secret')}`],
    ['not base64', 'Basic !!!!'],
    ['bad length', 'Basic abcde'],
    ['invalid utf-8', `Basic ${Buffer.from([0x61, 0x3a, 0xff, 0xfe]).toString('base64')}`],
    ['control char in user', `Basic ${b64('al\nice:x')}`],
    ['two tokens', `Basic ${b64('a:b')} ${b64('c:d')}`],
  ];
  it.each(invalid)('rejects %s', (_name, header) => {
    expect(parseBasicProxyAuthorization(header)).toBeUndefined();
  });
});

describe('proxyAuthenticateHeader', () => {
  it.each([
    ['Leeway', 'Basic realm="Leeway", charset="UTF-8"'],
    ['Say "hi"', 'Basic realm="Say \\"hi\\"", charset="UTF-8"'],
    ['a\\b', 'Basic realm="a\\\\b", charset="UTF-8"'],
    ['line\r\nbreak', 'Basic realm="linebreak", charset="UTF-8"'],
  ])('%s', (realm, expected) => {
    expect(proxyAuthenticateHeader(realm)).toBe(expected);
  });
});
