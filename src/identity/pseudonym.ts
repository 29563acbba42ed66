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
}

// 16 base64url chars = 96 bits: collisions are negligible for a company's headcount.
const PSEUDONYM_LENGTH = 16;

export class Pseudonymizer {
  readonly #clock: () => number;
  readonly #dayFormat: Intl.DateTimeFormat;
  #key: Buffer;
  #day: string;

  constructor(o: PseudonymizerOptions) {
    try {
      // en-CA formats as YYYY-MM-DD, which sorts and compares as a plain string.
      this.#dayFormat = new Intl.DateTimeFormat('en-CA', { timeZone: o.timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    } catch (cause) {
      throw new LeewayError('LEEWAY_ERR_CONFIG', `unknown time zone: ${o.timeZone}`, { timeZone: o.timeZone }, { cause });
    }
    this.#clock = o.clock ?? Date.now;
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
    return createHmac('sha256', this.#key).update(subject, 'utf8').digest('base64url').slice(0, PSEUDONYM_LENGTH) as Pseudonym;
  }

  #localDay(): string {
    return this.#dayFormat.format(this.#clock());
  }

  #rotateIfNeeded(): void {
    const today = this.#localDay();
    if (today !== this.#day) {
      // Overwrite the old key so it cannot be recovered from this object afterwards.
      this.#key.fill(0);
      this.#key = randomBytes(32);
      this.#day = today;
    }
  }
}
