/** Schedules on wall-clock time: ranges across midnight and the Europe/Paris DST changes of 2026. */
import { describe, expect, it } from 'vitest';
import { localTime, parseClock, scheduleActive } from '../../src/policy/schedule.js';
import type { CompiledSchedule } from '../../src/policy/schedule.js';

const EVERY_DAY = 0b1111111;
const FRIDAY = 1 << 4;
const WEEKDAYS = 0b0011111;

const schedule = (ranges: CompiledSchedule['ranges'], timeZone = 'Europe/Paris'): CompiledSchedule => ({ name: 'test', timeZone, ranges });

describe('parseClock', () => {
  it.each([
    ['00:00', 0],
    ['9:05', 545],
    ['12:00', 720],
    ['23:59', 1439],
    ['24:00', 1440],
    ['24:01', undefined],
    ['25:00', undefined],
    ['12:60', undefined],
    ['noon', undefined],
    ['1200', undefined],
  ])('%s → %s', (text, minutes) => {
    expect(parseClock(text)).toBe(minutes);
  });
});

describe('localTime in Europe/Paris across DST (2026-03-29 and 2026-10-25)', () => {
  it.each([
    ['2026-03-29T00:59:00Z', 6, 1 * 60 + 59], // Sunday 01:59 CET
    ['2026-03-29T01:00:00Z', 6, 3 * 60], // clocks jump to 03:00 CEST
    ['2026-10-25T00:30:00Z', 6, 2 * 60 + 30], // 02:30 CEST
    ['2026-10-25T01:30:00Z', 6, 2 * 60 + 30], // 02:30 CET, the repeated hour
    ['2026-10-25T02:00:00Z', 6, 3 * 60],
    ['2026-11-26T11:30:00Z', 3, 12 * 60 + 30], // Thursday 12:30 CET
    ['2026-07-15T10:15:00Z', 2, 12 * 60 + 15], // Wednesday 12:15 CEST
  ])('%s → day %i, minute %i', (iso, day, minute) => {
    expect(localTime('Europe/Paris', Date.parse(iso))).toEqual({ day, minute });
  });

  it('answers other zones independently of the cache of the first', () => {
    const at = Date.parse('2026-11-26T11:30:00Z');
    expect(localTime('Europe/Paris', at)).toEqual({ day: 3, minute: 750 });
    expect(localTime('Asia/Tokyo', at)).toEqual({ day: 3, minute: 20 * 60 + 30 });
    expect(localTime('America/New_York', at)).toEqual({ day: 3, minute: 6 * 60 + 30 });
  });
});

describe('scheduleActive', () => {
  const lunch = schedule([{ days: WEEKDAYS, from: 720, to: 840 }]);
  const fridayNight = schedule([{ days: FRIDAY, from: 22 * 60, to: 2 * 60 }]);
  const twoToThree = schedule([{ days: EVERY_DAY, from: 120, to: 180 }]);
  const untilMidnight = schedule([{ days: FRIDAY, from: 18 * 60, to: 1440 }]);

  it.each([
    // Lunch 12:00-14:00 on weekdays, winter and summer time alike.
    ['lunch', lunch, '2026-11-26T12:30:00+01:00', true],
    ['lunch', lunch, '2026-11-26T11:59:00+01:00', false],
    ['lunch', lunch, '2026-11-26T14:00:00+01:00', false],
    ['lunch', lunch, '2026-11-28T12:30:00+01:00', false], // Saturday
    ['lunch', lunch, '2026-03-27T12:30:00+01:00', true], // Friday before the spring change
    ['lunch', lunch, '2026-03-30T12:30:00+02:00', true], // Monday after it
    ['lunch', lunch, '2026-03-30T11:30:00+01:00', true], // same instant written in CET: still 12:30 local
    ['lunch', lunch, '2026-10-26T12:30:00+01:00', true], // Monday after the autumn change
    // Fri 22:00-02:00 belongs to Friday and runs into Saturday morning.
    ['friday night', fridayNight, '2026-11-27T23:00:00+01:00', true],
    ['friday night', fridayNight, '2026-11-28T01:00:00+01:00', true],
    ['friday night', fridayNight, '2026-11-28T01:59:00+01:00', true],
    ['friday night', fridayNight, '2026-11-28T02:00:00+01:00', false],
    ['friday night', fridayNight, '2026-11-27T21:59:00+01:00', false],
    ['friday night', fridayNight, '2026-11-27T01:00:00+01:00', false], // Thursday's night, not listed
    ['friday night', fridayNight, '2026-11-28T23:00:00+01:00', false], // Saturday evening
    ['friday night', fridayNight, '2026-11-26T23:00:00+01:00', false],
    // The range ending at 24:00 includes 23:59 and stops at midnight.
    ['until midnight', untilMidnight, '2026-11-27T23:59:00+01:00', true],
    ['until midnight', untilMidnight, '2026-11-28T00:00:00+01:00', false],
    // 02:00-03:00 wall clock: skipped on 2026-03-29, repeated on 2026-10-25.
    ['02:00-03:00', twoToThree, '2026-03-28T02:30:00+01:00', true],
    ['02:00-03:00', twoToThree, '2026-03-29T01:59:00+01:00', false],
    ['02:00-03:00', twoToThree, '2026-03-29T03:00:00+02:00', false],
    ['02:00-03:00', twoToThree, '2026-10-25T02:30:00+02:00', true],
    ['02:00-03:00', twoToThree, '2026-10-25T02:30:00+01:00', true],
    ['02:00-03:00', twoToThree, '2026-10-25T03:00:00+01:00', false],
  ])('%s at %s → %s', (_name, sched, iso, active) => {
    expect(scheduleActive(sched, Date.parse(iso))).toBe(active);
  });

  it('uses the schedule time zone', () => {
    const tokyoLunch = schedule([{ days: EVERY_DAY, from: 720, to: 780 }], 'Asia/Tokyo');
    expect(scheduleActive(tokyoLunch, Date.parse('2026-11-26T12:30:00+09:00'))).toBe(true);
    expect(scheduleActive(tokyoLunch, Date.parse('2026-11-26T12:30:00+01:00'))).toBe(false);
  });
});
