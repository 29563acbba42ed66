/**
 * Pseudonyms (PRODUCT.md privacy rule 3): a keyed hash of the user name with a random key that
 * lives only in memory and is replaced when the local date changes, so one day's pseudonyms
 * cannot be linked to the next day's, nor reversed by anyone who reads them.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { LeewayError } from '../errors.js';

export type Pseudonym = string & { readonly __brand: 'Pseudonym' };

export interface PseudonymizerOptions {
  /** IANA zone whose local midnight rotates the key (Settings.timeZone). */
  readonly timeZone: string;
  /** Milliseconds since the epoch; injectable for tests. */
  readonly clock?: () => number;
  /**
   * How long after a rotation yesterday's key is kept, only to recognise the person behind
   * something handed out just before midnight (a Continue token: its lifetime). Default 10 minutes.
   */
  readonly graceMs?: number;
}

// 16 base64url chars = 96 bits: collisions are negligible for a company's headcount.
const PSEUDONYM_LENGTH = 16;

export class Pseudonymizer {
  readonly #clock: () => number;
  readonly #dayFormat: Intl.DateTimeFormat;
  readonly #graceMs: number;
  #key: Buffer;
  #day: string;
  /** Yesterday's key until #formerUntil, then zeroed and dropped. */
  #formerKey: Buffer | undefined;
  #formerUntil = 0;

  constructor(o: PseudonymizerOptions) {
    try {
      // en-CA formats as YYYY-MM-DD, which sorts and compares as a plain string.
      this.#dayFormat = new Intl.DateTimeFormat('en-CA', { timeZone: o.timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    } catch (cause) {
      throw new LeewayError('LEEWAY_ERR_CONFIG', `unknown time zone: ${o.timeZone}`, { timeZone: o.timeZone }, { cause });
    }
    this.#clock = o.clock ?? Date.now;
    this.#graceMs = o.graceMs ?? 10 * 60_000;
    this.#day = this.#localDay();
    this.#key = randomBytes(32);
  }

  /** The local date (YYYY-MM-DD in the configured zone) the current key belongs to. */
  get day(): string {
    this.#rotateIfNeeded();
    return this.#day;
  }

  of(subject: string): Pseudonym {
    this.#rotateIfNeeded();
    return hmac(this.#key, subject);
  }

  /**
   * The subject's pseudonym of the day before, during the first minutes of a day only (graceMs),
   * else undefined. It is for comparing with a value issued before midnight, never for storing:
   * kept, it would link the two days.
   */
  formerOf(subject: string): Pseudonym | undefined {
    this.#rotateIfNeeded();
    const key = this.#formerKey;
    if (key === undefined) return undefined;
    if (this.#clock() >= this.#formerUntil) {
      this.#dropFormer();
      return undefined;
    }
    return hmac(key, subject);
  }

  #localDay(): string {
    return this.#dayFormat.format(this.#clock());
  }

  #rotateIfNeeded(): void {
    const today = this.#localDay();
    if (today !== this.#day) {
      this.#dropFormer();
      // Kept for the grace period from the first use of the new day, then overwritten so it cannot
      // be recovered from this object afterwards.
      if (this.#graceMs > 0) {
        this.#formerKey = this.#key;
        this.#formerUntil = this.#clock() + this.#graceMs;
      } else {
        this.#key.fill(0);
      }
      this.#key = randomBytes(32);
      this.#day = today;
    }
  }

  #dropFormer(): void {
    this.#formerKey?.fill(0);
    this.#formerKey = undefined;
  }
}

function hmac(key: Buffer, subject: string): Pseudonym {
  return createHmac('sha256', key).update(subject, 'utf8').digest('base64url').slice(0, PSEUDONYM_LENGTH) as Pseudonym;
}
