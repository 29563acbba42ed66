import { describe, expect, it } from 'vitest';
import { Pseudonymizer } from '../../src/identity/pseudonym.js';
import { LeewayError } from '../../src/errors.js';

const at = (iso: string): number => Date.parse(iso);

function withClock(start: number): { p: Pseudonymizer; set(ms: number): void } {
  let now = start;
  const p = new Pseudonymizer({ timeZone: 'Europe/Paris', clock: () => now });
  return { p, set: (ms) => { now = ms; } };
}

describe('Pseudonymizer', () => {
  it('gives a short base64url pseudonym', () => {
    const p = new Pseudonymizer({ timeZone: 'UTC' });
    const x = p.of('alice');
    expect(x).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(x).not.toContain('alice');
  });

  // [case, first instant, second instant, same pseudonym expected]
  const cases: [string, string, string, boolean][] = [
    ['same local day, morning and evening', '2026-03-10T07:00:00Z', '2026-03-10T22:30:00Z', true],
    ['UTC midnight but same Paris day (winter, UTC+1)', '2026-01-15T22:30:00Z', '2026-01-15T22:50:00Z', true],
    ['Paris midnight in winter (23:00Z)', '2026-01-15T22:59:00Z', '2026-01-15T23:01:00Z', false],
    ['Paris midnight in summer (22:00Z)', '2026-07-15T21:59:00Z', '2026-07-15T22:01:00Z', false],
    ['across the spring DST change (29 March 2026)', '2026-03-28T22:59:00Z', '2026-03-29T01:30:00Z', false],
    ['same day as the spring DST change, before and after 02:00', '2026-03-29T00:30:00Z', '2026-03-29T01:30:00Z', true],
    ['across the autumn DST change (25 October 2026)', '2026-10-24T21:59:00Z', '2026-10-25T02:30:00Z', false],
    ['same day as the autumn DST change, the repeated hour', '2026-10-25T00:30:00Z', '2026-10-25T01:30:00Z', true],
    ['next day at the same clock time', '2026-05-01T10:00:00Z', '2026-05-02T10:00:00Z', false],
  ];
  it.each(cases)('%s', (_name, first, second, same) => {
    const { p, set } = withClock(at(first));
    const a = p.of('alice');
    const dayA = p.day;
    set(at(second));
    const b = p.of('alice');
    expect(a === b).toBe(same);
    expect(dayA === p.day).toBe(same);
  });

  it('reports the local day in the configured zone', () => {
    const { p, set } = withClock(at('2026-01-15T23:30:00Z'));
    expect(p.day).toBe('2026-01-16');
    set(at('2026-07-15T21:30:00Z'));
    expect(p.day).toBe('2026-07-15');
  });

  it('distinguishes subjects and is stable within a day', () => {
    const { p } = withClock(at('2026-03-10T09:00:00Z'));
    expect(p.of('alice')).toBe(p.of('alice'));
    expect(p.of('alice')).not.toBe(p.of('bob'));
    expect(p.of('alice')).not.toBe(p.of('Alice'));
  });

  it('stays the same past the bound on the pseudonyms it keeps as one string each', () => {
    const p = new Pseudonymizer({ timeZone: 'Europe/Paris', clock: () => at('2026-03-10T09:00:00Z'), maxInterned: 100 });
    const first = p.of('alice');
    for (let i = 0; i < 250; i += 1) p.of(`ip:10.0.${i >> 8}.${i & 255}`);
    expect(p.of('alice')).toBe(first);
    expect(p.of('ip:10.0.0.1')).not.toBe(first);
  });

  it('keeps no link back after rotation, even on returning to the old day', () => {
    const { p, set } = withClock(at('2026-03-10T09:00:00Z'));
    const before = p.of('alice');
    set(at('2026-03-11T09:00:00Z'));
    p.of('alice');
    set(at('2026-03-10T09:00:00Z'));
    expect(p.of('alice')).not.toBe(before);
  });

  it('uses a random key: two instances disagree on the same subject and day', () => {
    const fixed = at('2026-03-10T09:00:00Z');
    const a = new Pseudonymizer({ timeZone: 'Europe/Paris', clock: () => fixed });
    const b = new Pseudonymizer({ timeZone: 'Europe/Paris', clock: () => fixed });
    expect(a.of('alice')).not.toBe(b.of('alice'));
  });

  it('rejects an unknown time zone with a config error', () => {
    expect(() => new Pseudonymizer({ timeZone: 'Mars/Olympus' })).toThrow(LeewayError);
    try {
      new Pseudonymizer({ timeZone: 'Mars/Olympus' });
    } catch (e) {
      expect((e as LeewayError).code).toBe('LEEWAY_ERR_CONFIG');
    }
  });
});

describe('Pseudonymizer.formerOf', () => {
  it('gives yesterday\'s pseudonym during the grace after midnight, then nothing', () => {
    const { p, set } = withClock(at('2026-01-15T22:59:00Z'));
    const yesterday = p.of('alice');
    expect(p.formerOf('alice')).toBeUndefined();
    // Paris midnight in winter is 23:00Z; the grace (10 minutes) starts with the first use of the new day.
    set(at('2026-01-15T23:00:30Z'));
    expect(p.of('alice')).not.toBe(yesterday);
    expect(p.formerOf('alice')).toBe(yesterday);
    expect(p.formerOf('bob')).not.toBe(yesterday);
    set(at('2026-01-15T23:10:29Z'));
    expect(p.formerOf('alice')).toBe(yesterday);
    set(at('2026-01-15T23:10:31Z'));
    expect(p.formerOf('alice')).toBeUndefined();
    // Dropped for good: nothing comes back later that day.
    set(at('2026-01-15T23:10:00Z'));
    expect(p.formerOf('alice')).toBeUndefined();
  });

  it('forgets the day before yesterday at the next rotation', () => {
    const { p, set } = withClock(at('2026-03-10T21:00:00Z'));
    const first = p.of('alice');
    set(at('2026-03-10T23:00:05Z'));
    const second = p.of('alice');
    expect(p.formerOf('alice')).toBe(first);
    set(at('2026-03-11T23:00:05Z'));
    expect(p.formerOf('alice')).toBe(second);
  });

  it('keeps nothing with graceMs 0', () => {
    let now = at('2026-03-10T22:00:00Z');
    const p = new Pseudonymizer({ timeZone: 'Europe/Paris', clock: () => now, graceMs: 0 });
    p.of('alice');
    now = at('2026-03-10T23:00:05Z');
    expect(p.formerOf('alice')).toBeUndefined();
  });
});
