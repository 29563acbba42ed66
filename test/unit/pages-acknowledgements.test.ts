import { describe, expect, it } from 'vitest';
import { AcknowledgementStore } from '../../src/pages/acknowledgements.js';

const T0 = Date.parse('2026-03-10T09:00:00Z');
const MIN = 60_000;

describe('AcknowledgementStore', () => {
  // [case, records, query, now offset, expected]
  const cases: [string, [string, string, number][], [string, string], number, boolean][] = [
    ['recorded and still valid', [['p1', 'coach:linkedin', T0 + 15 * MIN]], ['p1', 'coach:linkedin'], 5 * MIN, true],
    ['expired at its end', [['p1', 'coach:linkedin', T0 + 15 * MIN]], ['p1', 'coach:linkedin'], 15 * MIN, false],
    ['other person', [['p1', 'coach:linkedin', T0 + 15 * MIN]], ['p2', 'coach:linkedin'], 0, false],
    ['other key', [['p1', 'coach:linkedin', T0 + 15 * MIN]], ['p1', 'coach:facebook'], 0, false],
    ['never recorded', [], ['p1', 'coach:linkedin'], 0, false],
    ['later record extends', [['p1', 'k', T0 + MIN], ['p1', 'k', T0 + 10 * MIN]], ['p1', 'k'], 5 * MIN, true],
    ['later record shortens', [['p1', 'k', T0 + 10 * MIN], ['p1', 'k', T0 + MIN]], ['p1', 'k'], 5 * MIN, false],
    ['no ambiguity between pseudonym and key', [['a\nb', 'c', T0 + MIN]], ['a', 'b\nc'], 0, false],
  ];
  it.each(cases)('%s', (_name, records, [who, key], offset, expected) => {
    const s = new AcknowledgementStore();
    for (const [p, k, until] of records) s.record(p, k, until);
    expect(s.has(who, key, T0 + offset)).toBe(expected);
  });

  it('drops the oldest-recorded entries past the cap', () => {
    const s = new AcknowledgementStore({ maxEntries: 3 });
    for (const p of ['p1', 'p2', 'p3', 'p4']) s.record(p, 'k', T0 + 60 * MIN);
    expect(s.size).toBe(3);
    expect(s.has('p1', 'k', T0)).toBe(false);
    expect(['p2', 'p3', 'p4'].map((p) => s.has(p, 'k', T0))).toEqual([true, true, true]);
  });

  it('re-recording makes an entry young again', () => {
    const s = new AcknowledgementStore({ maxEntries: 2 });
    s.record('p1', 'k', T0 + MIN);
    s.record('p2', 'k', T0 + MIN);
    s.record('p1', 'k', T0 + MIN);
    s.record('p3', 'k', T0 + MIN);
    expect(s.has('p1', 'k', T0)).toBe(true);
    expect(s.has('p2', 'k', T0)).toBe(false);
  });

  it('prefers dropping expired entries over live ones at the cap', () => {
    const s = new AcknowledgementStore({ maxEntries: 2 });
    s.record('old', 'k', T0 + 60 * MIN);
    s.record('short', 'k', T0 + MIN);
    s.has('old', 'k', T0 + 2 * MIN);
    s.record('new', 'k', T0 + 60 * MIN);
    expect(s.has('old', 'k', T0 + 2 * MIN)).toBe(true);
    expect(s.has('new', 'k', T0 + 2 * MIN)).toBe(true);
  });

  it('sweeps expired entries', () => {
    const s = new AcknowledgementStore();
    for (let i = 0; i < 50; i++) s.record(`p${i}`, 'k', T0 + (i < 40 ? MIN : 60 * MIN));
    expect(s.size).toBe(50);
    s.sweep(T0 + 2 * MIN);
    expect(s.size).toBe(10);
  });

  it('sweeps on its own as time passes', () => {
    const s = new AcknowledgementStore();
    for (let i = 0; i < 20; i++) s.record(`p${i}`, 'k', T0 + MIN);
    s.has('x', 'k', T0);
    s.has('x', 'k', T0 + 2 * MIN);
    expect(s.size).toBe(0);
  });

  it.each([[0], [-1], [2.5]])('rejects maxEntries %s', (maxEntries) => {
    expect(() => new AcknowledgementStore({ maxEntries })).toThrow(RangeError);
  });
});
