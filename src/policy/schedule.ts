/**
 * Schedules: weekdays and HH:MM ranges in an IANA zone, evaluated on wall-clock time.
 *
 * A range belongs to the day it starts on. `fri 22:00-02:00` is active Friday from 22:00 and
 * Saturday until 02:00. Across DST changes wall-clock time is what counts: a range that starts in
 * the skipped hour begins when the clock shows a later time, and the repeated hour matches twice.
 */

export const DAY_NAMES = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type DayName = (typeof DAY_NAMES)[number];

export interface LocalTime {
  /** 0 = Monday ... 6 = Sunday. */
  readonly day: number;
  /** Minutes since local midnight. */
  readonly minute: number;
}

const WEEKDAY_INDEX: Readonly<Record<string, number>> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };

interface ZoneClock {
  readonly format: Intl.DateTimeFormat;
  lastMinute: number;
  last: LocalTime;
}

const clocks = new Map<string, ZoneClock>();

/** Throws RangeError when the zone is unknown. */
export function assertTimeZone(zone: string): void {
  new Intl.DateTimeFormat('en-US', { timeZone: zone });
}

export function isValidTimeZone(zone: string): boolean {
  try {
    assertTimeZone(zone);
    return true;
  } catch {
    return false;
  }
}

/**
 * Local weekday and minute of `epochMs` in `zone`. Intl formatting costs about a microsecond, so the
 * answer is cached per zone for the current minute (zone offsets are whole minutes).
 */
export function localTime(zone: string, epochMs: number): LocalTime {
  let clock = clocks.get(zone);
  if (clock === undefined) {
    const format = new Intl.DateTimeFormat('en-US', { timeZone: zone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    clock = { format, lastMinute: Number.NaN, last: { day: 0, minute: 0 } };
    clocks.set(zone, clock);
  }
  const epochMinute = Math.floor(epochMs / 60_000);
  if (epochMinute === clock.lastMinute) return clock.last;
  let day = 0;
  let hour = 0;
  let minute = 0;
  for (const part of clock.format.formatToParts(epochMs)) {
    if (part.type === 'weekday') day = WEEKDAY_INDEX[part.value] ?? 0;
    else if (part.type === 'hour') hour = Number(part.value) % 24;
    else if (part.type === 'minute') minute = Number(part.value);
  }
  const result = Object.freeze({ day, minute: hour * 60 + minute });
  clock.lastMinute = epochMinute;
  clock.last = result;
  return result;
}

export interface TimeRange {
  /** Bit i set = range starts on day i (0 = Monday). */
  readonly days: number;
  readonly from: number;
  /** Exclusive end in minutes; ≤ from means the range ends on the next day. */
  readonly to: number;
}

export interface CompiledSchedule {
  readonly name: string;
  readonly timeZone: string;
  readonly ranges: readonly TimeRange[];
}

/** Parse `H:MM` / `HH:MM` (00:00-24:00) to minutes; undefined when invalid. */
export function parseClock(text: string): number | undefined {
  const match = /^(\d{1,2}):(\d{2})$/.exec(text);
  if (match === null) return undefined;
  const hours = Number(match[1]);
  const minutes = Number(match[2]);
  if (minutes > 59 || hours > 24 || (hours === 24 && minutes !== 0)) return undefined;
  return hours * 60 + minutes;
}

export function rangeActive(range: TimeRange, at: LocalTime): boolean {
  if (range.from < range.to) return (range.days & (1 << at.day)) !== 0 && at.minute >= range.from && at.minute < range.to;
  // Crosses midnight: the evening part on a listed day, the morning part on the day after.
  if ((range.days & (1 << at.day)) !== 0 && at.minute >= range.from) return true;
  const previous = (at.day + 6) % 7;
  return (range.days & (1 << previous)) !== 0 && at.minute < range.to;
}

export function scheduleActive(schedule: CompiledSchedule, epochMs: number): boolean {
  const at = localTime(schedule.timeZone, epochMs);
  for (const range of schedule.ranges) if (rangeActive(range, at)) return true;
  return false;
}

export function formatLocalTime(at: LocalTime): string {
  const hh = String(Math.floor(at.minute / 60)).padStart(2, '0');
  const mm = String(at.minute % 60).padStart(2, '0');
  const name = DAY_NAMES[at.day] ?? 'mon';
  return `${name[0]?.toUpperCase()}${name.slice(1)} ${hh}:${mm}`;
}
