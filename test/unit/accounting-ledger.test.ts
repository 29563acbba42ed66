import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { LocalDayCalendar } from '../../src/accounting/local-day.js';
import { UsageLedger } from '../../src/accounting/usage-ledger.js';
import type { CategoryKind } from '../../src/accounting/usage-ledger.js';

const PARIS = 'Europe/Paris';
const t = (iso: string): number => Date.parse(iso);
const kinds: Record<string, CategoryKind> = { 'social-leisure': 'leisure', 'business-networking': 'business' };
const ledger = (): UsageLedger => new UsageLedger({ timeZone: PARIS, categoryKind: (c) => kinds[c] ?? 'other' });

describe('LocalDayCalendar', () => {
  const cases = [
    { name: 'winter day', at: '2026-01-15T12:00:00Z', date: '2026-01-15', start: '2026-01-14T23:00:00Z', end: '2026-01-15T23:00:00Z', hours: 24 },
    { name: 'summer day', at: '2026-06-15T21:59:59.999Z', date: '2026-06-15', start: '2026-06-14T22:00:00Z', end: '2026-06-15T22:00:00Z', hours: 24 },
    { name: 'summer midnight exactly', at: '2026-06-15T22:00:00Z', date: '2026-06-16', start: '2026-06-15T22:00:00Z', end: '2026-06-16T22:00:00Z', hours: 24 },
    { name: 'spring DST day (23 h)', at: '2026-03-29T12:00:00Z', date: '2026-03-29', start: '2026-03-28T23:00:00Z', end: '2026-03-29T22:00:00Z', hours: 23 },
    { name: 'spring DST, just after the jump', at: '2026-03-29T01:00:00Z', date: '2026-03-29', start: '2026-03-28T23:00:00Z', end: '2026-03-29T22:00:00Z', hours: 23 },
    { name: 'autumn DST day (25 h)', at: '2026-10-25T12:00:00Z', date: '2026-10-25', start: '2026-10-24T22:00:00Z', end: '2026-10-25T23:00:00Z', hours: 25 },
    { name: 'autumn DST, in the repeated hour', at: '2026-10-25T00:30:00Z', date: '2026-10-25', start: '2026-10-24T22:00:00Z', end: '2026-10-25T23:00:00Z', hours: 25 },
    { name: 'day before autumn DST', at: '2026-10-24T21:59:00Z', date: '2026-10-24', start: '2026-10-23T22:00:00Z', end: '2026-10-24T22:00:00Z', hours: 24 },
  ];
  it.each(cases)('$name', ({ at, date, start, end, hours }) => {
    const day = new LocalDayCalendar(PARIS).dayOf(t(at));
    expect(day.date).toBe(date);
    expect(new Date(day.start).toISOString()).toBe(new Date(t(start)).toISOString());
    expect(new Date(day.end).toISOString()).toBe(new Date(t(end)).toISOString());
    expect((day.end - day.start) / 3_600_000).toBe(hours);
  });

  it('handles a zone where midnight itself is skipped (America/Santiago, 2026-09-06)', () => {
    // Chile springs forward at 24:00 → 01:00, so the day starts at 01:00 local.
    const day = new LocalDayCalendar('America/Santiago').dayOf(t('2026-09-06T12:00:00Z'));
    expect(day.date).toBe('2026-09-06');
    expect(new Date(day.start).toISOString()).toBe('2026-09-06T04:00:00.000Z');
  });

  it('rejects an unknown zone with a LeewayError', () => {
    expect(() => new LocalDayCalendar('Mars/Olympus')).toThrow(expect.objectContaining({ code: 'LEEWAY_ERR_CONFIG' }));
  });
});

describe('UsageLedger minutes', () => {
  // Each case: requests as [second offset from 10:00:00 Paris, site, category]; expected totals.
  const base = t('2026-06-15T08:00:00Z');
  const cases: {
    name: string;
    requests: [number, string, string][];
    browsing: number;
    site: Record<string, number>;
    category: Record<string, number>;
  }[] = [
    { name: 'one request is one minute', requests: [[0, 'facebook', 'social-leisure']], browsing: 1, site: { facebook: 1 }, category: { 'social-leisure': 1 } },
    {
      name: 'many requests in one clock minute count once',
      requests: [[0, 'facebook', 'social-leisure'], [30, 'facebook', 'social-leisure'], [59.999, 'facebook', 'social-leisure']],
      browsing: 1, site: { facebook: 1 }, category: { 'social-leisure': 1 },
    },
    {
      name: 'the next clock minute is a new minute even 1 ms later',
      requests: [[59.999, 'facebook', 'social-leisure'], [60, 'facebook', 'social-leisure']],
      browsing: 2, site: { facebook: 2 }, category: { 'social-leisure': 2 },
    },
    {
      name: 'two sites in one minute: one browsing minute, one minute on each site',
      requests: [[1, 'facebook', 'social-leisure'], [2, 'linkedin', 'business-networking']],
      browsing: 1, site: { facebook: 1, linkedin: 1 }, category: { 'social-leisure': 1, 'business-networking': 1 },
    },
    {
      name: 'two sites of one category in one minute: one category minute',
      requests: [[1, 'facebook', 'social-leisure'], [2, 'instagram', 'social-leisure']],
      browsing: 1, site: { facebook: 1, instagram: 1 }, category: { 'social-leisure': 1 },
    },
    {
      name: 'gaps do not count: minutes 0, 5 and 10',
      requests: [[0, 'facebook', 'social-leisure'], [300, 'facebook', 'social-leisure'], [600, 'facebook', 'social-leisure']],
      browsing: 3, site: { facebook: 3 }, category: { 'social-leisure': 3 },
    },
  ];
  it.each(cases)('$name', ({ requests, browsing, site, category }) => {
    const l = ledger();
    for (const [seconds, s, c] of requests) l.record({ pseudonym: 'p1', at: base + seconds * 1000, site: s, category: c, group: 'sales' });
    expect(l.browsingMinutesToday('p1')).toBe(browsing);
    const view = l.usageView('p1');
    for (const [name, minutes] of Object.entries(site)) expect(view.minutesUsedToday({ kind: 'site', name })).toBe(minutes);
    for (const [name, minutes] of Object.entries(category)) expect(view.minutesUsedToday({ kind: 'category', name })).toBe(minutes);
    expect(l.usageView('someone-else').minutesUsedToday({ kind: 'site', name: 'facebook' })).toBe(0);
  });

  it('reports a new site minute and a new browsing minute only once each', () => {
    const l = ledger();
    const first = l.record({ pseudonym: 'p1', at: base, site: 'facebook', category: 'social-leisure' });
    const again = l.record({ pseudonym: 'p1', at: base + 1000, site: 'facebook', category: 'social-leisure' });
    const other = l.record({ pseudonym: 'p1', at: base + 2000, site: 'linkedin', category: 'business-networking' });
    expect([first.browsingMinute, first.siteMinute]).toEqual([true, true]);
    expect([again.browsingMinute, again.siteMinute]).toEqual([false, false]);
    expect([other.browsingMinute, other.siteMinute]).toEqual([false, true]);
    expect(first.group).toBe('other');
  });

  it('folds unnamed sites and categories into other', () => {
    const l = ledger();
    const result = l.record({ pseudonym: 'p1', at: base });
    expect([result.site, result.category, result.group]).toEqual(['other', 'other', 'other']);
    expect(l.usageView('p1').minutesUsedToday({ kind: 'site', name: 'other' })).toBe(1);
  });

  it('a usage view taken before the first request sees later minutes', () => {
    const l = ledger();
    const view = l.usageView('p1');
    l.record({ pseudonym: 'p1', at: base, site: 'facebook', category: 'social-leisure' });
    expect(view.minutesUsedToday({ kind: 'site', name: 'facebook' })).toBe(1);
  });

  it('counts a pair resolved once by scopes() as count() counts the names, across a rollover', () => {
    const base = t('2026-06-15T08:00:00Z');
    const byNames = ledger();
    const byPair = ledger();
    const pairs = [byPair.scopes('social-leisure', 'facebook'), byPair.scopes('business-networking', 'linkedin'), byPair.scopes(undefined, undefined)];
    const names = [['social-leisure', 'facebook'], ['business-networking', 'linkedin'], [undefined, undefined]] as const;
    const day = 86_400_000;
    for (let i = 0; i < 60; i += 1) {
      // Three people, three pairs, minutes apart and over two days (the pairs outlive the rollover).
      const at = base + Math.floor(i / 30) * day + i * 45_000;
      const who = `p${i % 3}`;
      const group = i % 4 === 0 ? 'sales' : undefined;
      const [category, site] = names[i % 3] as readonly [string | undefined, string | undefined];
      expect(byPair.countIn(who, at, pairs[i % 3] as ReturnType<UsageLedger['scopes']>, group)).toBe(byNames.count(who, at, category, site, group));
    }
    expect(byPair.todaySummary(base + day)).toEqual(byNames.todaySummary(base + day));
    expect(byPair.peopleByCategoryAndGroup()).toEqual(byNames.peopleByCategoryAndGroup());
    expect(byPair.usageView('p1').minutesUsedToday({ kind: 'site', name: 'linkedin' })).toBe(byNames.usageView('p1').minutesUsedToday({ kind: 'site', name: 'linkedin' }));
  });
});

describe('UsageLedger daily rollover (Europe/Paris)', () => {
  const cases = [
    { name: 'ordinary night', before: '2026-06-15T21:59:30Z', after: '2026-06-15T22:00:00Z', dayAfter: '2026-06-16' },
    { name: 'into the spring DST day', before: '2026-03-28T22:59:59Z', after: '2026-03-28T23:00:00Z', dayAfter: '2026-03-29' },
    { name: 'out of the spring DST day (23 h)', before: '2026-03-29T21:59:59Z', after: '2026-03-29T22:00:00Z', dayAfter: '2026-03-30' },
    { name: 'into the autumn DST day', before: '2026-10-24T21:59:59Z', after: '2026-10-24T22:00:00Z', dayAfter: '2026-10-25' },
    { name: 'out of the autumn DST day (25 h)', before: '2026-10-25T22:59:59Z', after: '2026-10-25T23:00:00Z', dayAfter: '2026-10-26' },
  ];
  it.each(cases)('$name resets daily totals at local midnight', ({ before, after, dayAfter }) => {
    const l = ledger();
    l.record({ pseudonym: 'p1', at: t(before) - 120_000, site: 'facebook', category: 'social-leisure', group: 'sales' });
    l.record({ pseudonym: 'p1', at: t(before), site: 'facebook', category: 'social-leisure', group: 'sales' });
    l.record({ pseudonym: 'p2', at: t(before), site: 'linkedin', category: 'business-networking', group: 'sales' });
    expect(l.usageView('p1').minutesUsedToday({ kind: 'category', name: 'social-leisure' })).toBe(2);
    expect(l.groupPeopleToday('sales')).toBe(2);

    l.record({ pseudonym: 'p1', at: t(after), site: 'facebook', category: 'social-leisure', group: 'sales' });
    expect(l.day?.date).toBe(dayAfter);
    expect(l.usageView('p1').minutesUsedToday({ kind: 'category', name: 'social-leisure' })).toBe(1);
    expect(l.usageView('p2').minutesUsedToday({ kind: 'category', name: 'business-networking' })).toBe(0);
    expect(l.activePeople).toBe(1);
    expect(l.groupPeopleToday('sales')).toBe(1);
    const summary = l.todaySummary(t(after));
    expect(summary.day).toBe(dayAfter);
    expect(summary.since).toBe(t(after));
    expect(summary.browsingPersonMinutes).toBe(1);
  });

  it('a new time zone (policy reload) takes effect at the next rollover', () => {
    const l = ledger();
    l.record({ pseudonym: 'p1', at: t('2026-06-15T10:00:00Z'), site: 'facebook', category: 'social-leisure' });
    l.setTimeZone('America/New_York');
    // Still the Paris day until Paris midnight...
    l.record({ pseudonym: 'p1', at: t('2026-06-15T21:59:00Z'), site: 'facebook', category: 'social-leisure' });
    expect(l.browsingMinutesToday('p1')).toBe(2);
    expect(l.day?.end).toBe(t('2026-06-15T22:00:00Z'));
    // ...then New York days: 2026-06-15 there runs until 04:00Z on the 16th.
    l.record({ pseudonym: 'p1', at: t('2026-06-15T22:00:00Z'), site: 'facebook', category: 'social-leisure' });
    expect(l.browsingMinutesToday('p1')).toBe(1);
    expect(l.day?.date).toBe('2026-06-15');
    expect(l.day?.end).toBe(t('2026-06-16T04:00:00Z'));
    expect(l.timeZone).toBe('America/New_York');
  });

  it('a quiet night still rolls over when the summary is asked for', () => {
    const l = ledger();
    l.record({ pseudonym: 'p1', at: t('2026-06-15T10:00:00Z'), site: 'facebook', category: 'social-leisure' });
    const next = l.todaySummary(t('2026-06-16T06:00:00Z'));
    expect(next.day).toBe('2026-06-16');
    expect(next.activePeople).toBe(0);
    expect(next.since).toBe(t('2026-06-15T22:00:00Z'));
  });

  it('counts quota exhaustion once per person, scope and day', () => {
    const l = ledger();
    const at = t('2026-06-15T10:00:00Z');
    const scope = { kind: 'category' as const, name: 'social-leisure' };
    expect(l.quotaExhausted('p1', scope, at)).toBe(true);
    expect(l.quotaExhausted('p1', scope, at + 60_000)).toBe(false);
    expect(l.quotaExhausted('p1', { kind: 'site', name: 'facebook' }, at)).toBe(true);
    expect(l.quotaExhausted('p2', scope, at)).toBe(true);
    expect(l.todaySummary(at).quotaExhaustions).toBe(3);
    expect(l.quotaExhausted('p1', scope, t('2026-06-16T10:00:00Z'))).toBe(true);
  });
});

describe('UsageLedger aggregates', () => {
  const base = t('2026-06-15T08:00:00Z');

  it('people per band of daily minutes move as minutes grow', () => {
    const l = ledger();
    // p1: 14 minutes, p2: 15, p3: 61, p4: 130.
    const plan: [string, number][] = [['p1', 14], ['p2', 15], ['p3', 61], ['p4', 130]];
    for (const [p, minutes] of plan) {
      for (let m = 0; m < minutes; m += 1) l.record({ pseudonym: p, at: base + m * 60_000, site: 'facebook', category: 'social-leisure' });
    }
    const bands = Object.fromEntries(l.peopleByBand().filter((b) => b.category === 'social-leisure').map((b) => [b.band, b.people]));
    expect(bands).toEqual({ '0-15': 1, '15-30': 1, '30-60': 0, '60-120': 1, '120+': 1 });
  });

  it('distinct people per category and group, and per group', () => {
    const l = ledger();
    for (let i = 0; i < 6; i += 1) l.record({ pseudonym: `s${i}`, at: base + i, site: 'facebook', category: 'social-leisure', group: 'sales' });
    l.record({ pseudonym: 's0', at: base + 90_000, site: 'facebook', category: 'social-leisure', group: 'sales' });
    l.record({ pseudonym: 's0', at: base, site: 'linkedin', category: 'business-networking', group: 'sales' });
    l.record({ pseudonym: 'd0', at: base, site: 'linkedin', category: 'business-networking', group: 'board' });
    const table = Object.fromEntries(l.peopleByCategoryAndGroup().map((r) => [`${r.category}/${r.group}`, r.people]));
    expect(table).toEqual({ 'social-leisure/sales': 6, 'business-networking/sales': 1, 'business-networking/board': 1 });
    expect(l.groupPeopleToday('sales')).toBe(6);
    expect(l.groupPeopleToday('board')).toBe(1);
    expect(l.groupPeopleToday('nobody')).toBe(0);
  });

  it('a person seen from a second group is counted in both', () => {
    const l = ledger();
    l.record({ pseudonym: 'p1', at: base, site: 'facebook', category: 'social-leisure', group: 'sales' });
    l.record({ pseudonym: 'p1', at: base + 1000, site: 'facebook', category: 'social-leisure', group: 'lab' });
    expect(l.groupPeopleToday('lab')).toBe(1);
    const table = Object.fromEntries(l.peopleByCategoryAndGroup().map((r) => [`${r.category}/${r.group}`, r.people]));
    expect(table).toEqual({ 'social-leisure/sales': 1, 'social-leisure/lab': 1 });
  });

  it('summarises the day: leisure and business minutes as parts of browsing', () => {
    const l = ledger();
    // p1: 10 min leisure, the same 10 minutes also on linkedin; p2: 5 min business only.
    for (let m = 0; m < 10; m += 1) {
      l.record({ pseudonym: 'p1', at: base + m * 60_000, site: 'facebook', category: 'social-leisure' });
      l.record({ pseudonym: 'p1', at: base + m * 60_000 + 10, site: 'linkedin', category: 'business-networking' });
    }
    for (let m = 0; m < 5; m += 1) l.record({ pseudonym: 'p2', at: base + m * 60_000, site: 'linkedin', category: 'business-networking' });
    l.pageEvent('coach', 'shown', base);
    l.pageEvent('coach', 'continued', base);
    l.pageEvent('suggest', 'alternative', base);
    l.purposeAnswer('break', base);
    const s = l.todaySummary(base + 3_600_000);
    expect(s).toMatchObject({
      day: '2026-06-15',
      since: base,
      activePeople: 2,
      browsingPersonMinutes: 15,
      leisurePersonMinutes: 10,
      businessPersonMinutes: 15,
      leisureMinutesPerActivePerson: 5,
      businessMinutesPerActivePerson: 7.5,
      purposeAnswers: { business: 0, break: 1, unsaid: 0 },
      quotaExhaustions: 0,
    });
    expect(s.pages.coach).toEqual({ shown: 1, continued: 1, alternative: 0 });
    expect(s.pages.suggest.alternative).toBe(1);
    expect(s.pages.block.shown).toBe(0);
  });
});

describe('UsageLedger memory', () => {
  it('stays bounded with 100,000 pseudonyms and forgets them at midnight', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const l = ledger();
    const base = t('2026-06-15T08:00:00Z');
    const people = 100_000;
    // Made before the first heap reading: the pseudonym strings belong to the caller, not the ledger.
    const names = Array.from({ length: people }, (_, i) => `pseudonym-${String(i).padStart(12, '0')}`);
    // Group names come from the compiled policy: shared strings, not one per person.
    const groups = Array.from({ length: 20 }, (_, i) => `group-${i}`);
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < people; i += 1) {
      const name = names[i] ?? '';
      // A typical day: one leisure site and one business site.
      l.record({ pseudonym: name, at: base + (i % 600) * 1000, site: 'facebook', category: 'social-leisure', group: groups[i % 20] });
      l.record({ pseudonym: name, at: base + 3_600_000, site: 'linkedin', category: 'business-networking', group: groups[i % 20] });
    }
    gc();
    const perPerson = (process.memoryUsage().heapUsed - before) / people;
    console.log(`UsageLedger: ${Math.round(perPerson)} bytes per person (2 sites, 2 categories; pseudonym strings not counted)`);
    expect(l.activePeople).toBe(people);
    expect(perPerson).toBeLessThan(512);

    l.record({ pseudonym: 'tomorrow', at: t('2026-06-16T08:00:00Z'), site: 'facebook', category: 'social-leisure' });
    gc();
    const after = process.memoryUsage().heapUsed;
    expect(l.activePeople).toBe(1);
    // Everything held for yesterday's people is released.
    expect(after - before).toBeLessThan(people * 50);
  });
});
