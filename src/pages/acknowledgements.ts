/**
 * Who has pressed Continue on which coach or suggest page, until when (issue 3 item 7).
 * Keyed by pseudonym (never a name), so it empties itself at the daily key rotation in effect:
 * tomorrow's pseudonyms never match today's entries, which then simply expire or are swept.
 */

export interface AcknowledgementStoreOptions {
  /** Most entries kept; past it the oldest-recorded are dropped. Default 100 000. */
  readonly maxEntries?: number;
}

export class AcknowledgementStore {
  readonly #max: number;
  /** pseudonym + key → until (ms). Insertion order = record order, for dropping the oldest. */
  readonly #entries = new Map<string, number>();
  #nextSweepAt = 0;
  #lastNow = 0;

  constructor(o: AcknowledgementStoreOptions = {}) {
    const max = o.maxEntries ?? 100_000;
    if (!Number.isInteger(max) || max <= 0) throw new RangeError('maxEntries must be a positive integer');
    this.#max = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** `key` is what was acknowledged, typically `${ruleId}:${site ?? host}`. A later record replaces an earlier one. */
  record(pseudonym: string, key: string, untilMs: number): void {
    const k = entryKey(pseudonym, key);
    // Re-inserting moves the entry to the end, so "oldest" means least recently recorded.
    this.#entries.delete(k);
    this.#entries.set(k, untilMs);
    // record() is given no clock: sweep with the latest time has() saw before dropping live entries.
    if (this.#entries.size > this.#max) this.sweep(this.#lastNow);
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }

  has(pseudonym: string, key: string, nowMs: number): boolean {
    if (nowMs > this.#lastNow) this.#lastNow = nowMs;
    this.#maybeSweep(nowMs);
    const k = entryKey(pseudonym, key);
    const until = this.#entries.get(k);
    if (until === undefined) return false;
    if (until <= nowMs) {
      this.#entries.delete(k);
      return false;
    }
    return true;
  }

  /** Drops every entry expired at `nowMs`. Called on its own about once a minute from has(). */
  sweep(nowMs: number): void {
    for (const [k, until] of this.#entries) if (until <= nowMs) this.#entries.delete(k);
    this.#nextSweepAt = nowMs + 60_000;
  }

  #maybeSweep(nowMs: number): void {
    if (nowMs >= this.#nextSweepAt) this.sweep(nowMs);
  }
}

function entryKey(pseudonym: string, key: string): string {
  // Length-prefixed so no (pseudonym, key) pair can collide with another.
  return `${pseudonym.length}:${pseudonym}${key}`;
}
