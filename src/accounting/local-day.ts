/**
 * The local calendar day of an instant in one IANA time zone, and the instant the day ends.
 * Daily totals reset at local midnight in the policy's zone, DST days included (a local day
 * is then 23 or 25 hours long), so the boundary is computed from the zone, never as +24 h.
 */
import { LeewayError } from '../errors.js';

export interface LocalDay {
  /** `YYYY-MM-DD` in the zone. */
  readonly date: string;
  /** Epoch ms of the day's first instant (local midnight). */
  readonly start: number;
  /** Epoch ms of the next day's first instant. */
  readonly end: number;
}

const DAY_MS = 86_400_000;

export class LocalDayCalendar {
  readonly timeZone: string;
  // One formatter for the calendar's life: constructing Intl.DateTimeFormat costs ~50 µs.
  readonly #format: Intl.DateTimeFormat;

  constructor(timeZone: string) {
    try {
      this.#format = new Intl.DateTimeFormat('en-CA', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
      });
    } catch (cause) {
      throw new LeewayError('LEEWAY_ERR_CONFIG', `unknown time zone ${JSON.stringify(timeZone)}`, { timeZone }, { cause });
    }
    this.timeZone = timeZone;
  }

  /** The local day containing `at`. */
  dayOf(at: number): LocalDay {
    const { y, m, d } = this.#parts(at);
    const start = this.#midnight(y, m, d, at);
    const next = new Date(Date.UTC(y, m - 1, d) + DAY_MS);
    const end = this.#midnight(next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate(), start + DAY_MS);
    return { date: `${y}-${pad(m)}-${pad(d)}`, start, end };
  }

  #parts(at: number): { y: number; m: number; d: number; h: number; mi: number; s: number } {
    const out = { y: 0, m: 0, d: 0, h: 0, mi: 0, s: 0 };
    for (const part of this.#format.formatToParts(at)) {
      switch (part.type) {
        case 'year': out.y = Number(part.value); break;
        case 'month': out.m = Number(part.value); break;
        case 'day': out.d = Number(part.value); break;
        case 'hour': out.h = Number(part.value); break;
        case 'minute': out.mi = Number(part.value); break;
        case 'second': out.s = Number(part.value); break;
        default: break;
      }
    }
    return out;
  }

  /** Zone offset at `at` in ms (local wall time minus UTC). */
  #offset(at: number): number {
    const p = this.#parts(at);
    const wholeSecond = at - (((at % 1000) + 1000) % 1000);
    return Date.UTC(p.y, p.m - 1, p.d, p.h, p.mi, p.s) - wholeSecond;
  }

  /**
   * Epoch ms of local midnight on y-m-d. `near` is an instant close to it, whose offset is the
   * first guess; a second pass corrects it when an offset change lies between the two.
   */
  #midnight(y: number, m: number, d: number, near: number): number {
    const wall = Date.UTC(y, m - 1, d);
    let guess = wall - this.#offset(near);
    guess = wall - this.#offset(guess);
    // Where midnight itself is skipped by a DST jump, the day starts at the first instant that
    // carries the new date: step back while the previous minute is still on that date.
    const date = `${y}-${pad(m)}-${pad(d)}`;
    while (this.#dateOf(guess) !== date) guess += 60_000;
    while (this.#dateOf(guess - 60_000) === date) guess -= 60_000;
    return guess;
  }

  #dateOf(at: number): string {
    const p = this.#parts(at);
    return `${p.y}-${pad(p.m)}-${pad(p.d)}`;
  }
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}
