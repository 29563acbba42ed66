import { describe, expect, it } from 'vitest';
import { ContinueTokens, type ContinueClaims } from '../../src/pages/continue-token.js';
import { LeewayError } from '../../src/errors.js';

const claims: ContinueClaims = {
  pseudonym: 'p-alice-000000001',
  host: 'www.linkedin.com',
  site: 'linkedin',
  ruleId: 'coach-leisure',
  url: 'http://www.linkedin.com/feed/?x=1',
  continueMinutes: 15,
};
const alice = { pseudonym: claims.pseudonym, host: claims.host };

function setup(o: { ttlMs?: number; maxOutstanding?: number } = {}): { t: ContinueTokens; advance(ms: number): void } {
  let now = Date.parse('2026-03-10T09:00:00Z');
  const t = new ContinueTokens({ ...o, clock: () => now });
  return { t, advance: (ms) => { now += ms; } };
}

/** Flips one character of the payload part while keeping it valid base64url. */
function tamperPayload(token: string): string {
  const [payload = '', mac = ''] = token.split('.');
  const json = Buffer.from(payload, 'base64url').toString('utf8').replace('www.linkedin.com', 'www.facebook.com');
  return `${Buffer.from(json, 'utf8').toString('base64url')}.${mac}`;
}

describe('ContinueTokens', () => {
  it('round-trips the claims once', () => {
    const { t } = setup();
    const token = t.issue(claims);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const r = t.redeem(token, alice);
    expect(r).toEqual({ ok: true, claims, expiresAt: Date.parse('2026-03-10T09:10:00Z') });
  });

  it('keeps claims without a site', () => {
    const { t } = setup();
    const { site: _site, ...noSite } = claims;
    const r = t.redeem(t.issue(noSite), alice);
    expect(r.ok && r.claims).toEqual(noSite);
  });

  it('carries a signed alternative URL for suggest pages', () => {
    const { t } = setup();
    const withAlt = { ...claims, alternativeUrl: 'https://intranet.example/community' };
    const r = t.redeem(t.issue(withAlt), alice);
    expect(r.ok && r.claims).toEqual(withAlt);
  });

  it('matches the host case-insensitively and ignores a trailing dot', () => {
    const { t } = setup();
    expect(t.redeem(t.issue(claims), { pseudonym: alice.pseudonym, host: 'WWW.LinkedIn.com.' }).ok).toBe(true);
  });

  // [reason, how to produce it]
  const refusals: [string, (t: ContinueTokens, advance: (ms: number) => void) => { token: string; who?: { pseudonym: string; host: string } }][] = [
    ['malformed', () => ({ token: '' })],
    ['malformed', () => ({ token: 'not a token' })],
    ['malformed', () => ({ token: 'abc' })],
    ['malformed', () => ({ token: 'a.b.c' })],
    ['malformed', (t) => ({ token: `${t.issue(claims).split('.')[0]}.AAAA` })],
    ['malformed', () => ({ token: 'x'.repeat(20_000) + '.' + 'y'.repeat(43) })],
    ['forged', (t) => ({ token: tamperPayload(t.issue(claims)) })],
    ['forged', (t) => {
      const [p = ''] = t.issue(claims).split('.');
      return { token: `${p}.${Buffer.alloc(32, 7).toString('base64url')}` };
    }],
    ['forged', () => ({ token: new ContinueTokens().issue(claims) })],
    ['expired', (t, advance) => {
      const token = t.issue(claims);
      advance(10 * 60_000);
      return { token };
    }],
    ['replayed', (t) => {
      const token = t.issue(claims);
      t.redeem(token, alice);
      return { token };
    }],
    ['wrong-person', (t) => ({ token: t.issue(claims), who: { pseudonym: 'p-bob-0000000002', host: claims.host } })],
    ['wrong-host', (t) => ({ token: t.issue(claims), who: { pseudonym: alice.pseudonym, host: 'www.facebook.com' } })],
  ];
  it.each(refusals)('refuses: %s (case %#)', (reason, make) => {
    const { t, advance } = setup();
    const { token, who } = make(t, advance);
    expect(t.redeem(token, who ?? alice)).toEqual({ ok: false, reason });
  });

  it('does not consume a token on a refused attempt by someone else', () => {
    const { t } = setup();
    const token = t.issue(claims);
    expect(t.redeem(token, { pseudonym: 'intruder', host: claims.host }).ok).toBe(false);
    expect(t.redeem(token, alice).ok).toBe(true);
  });

  it('is still valid just before expiry', () => {
    const { t, advance } = setup({ ttlMs: 1000 });
    const token = t.issue(claims);
    advance(999);
    expect(t.redeem(token, alice).ok).toBe(true);
  });

  it('bounds memory: past the cap the oldest tokens fail closed', () => {
    const { t } = setup({ maxOutstanding: 3 });
    const tokens = [1, 2, 3, 4, 5].map(() => t.issue(claims));
    expect(t.outstanding).toBe(3);
    expect(t.redeem(tokens[0] ?? '', alice)).toEqual({ ok: false, reason: 'expired' });
    expect(t.redeem(tokens[1] ?? '', alice)).toEqual({ ok: false, reason: 'expired' });
    expect(t.redeem(tokens[4] ?? '', alice).ok).toBe(true);
  });

  it('forgets expired tokens', () => {
    const { t, advance } = setup({ ttlMs: 1000 });
    for (let i = 0; i < 10; i++) t.issue(claims);
    expect(t.outstanding).toBe(10);
    advance(1000);
    t.issue(claims);
    expect(t.outstanding).toBe(1);
  });

  it('accepts tokens across instances sharing a secret, and not otherwise', () => {
    const secret = Buffer.alloc(32, 1);
    const a = new ContinueTokens({ secret });
    const b = new ContinueTokens({ secret: Buffer.alloc(32, 2) });
    expect(b.redeem(a.issue(claims), alice)).toEqual({ ok: false, reason: 'forged' });
  });

  it.each([
    [{ secret: Buffer.alloc(8) }],
    [{ ttlMs: 0 }],
    [{ maxOutstanding: 0 }],
    [{ maxOutstanding: 1.5 }],
  ])('rejects bad options %#', (o) => {
    expect(() => new ContinueTokens(o)).toThrow(LeewayError);
  });
});
