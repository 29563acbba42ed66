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
  /** How many of today's pseudonyms are kept as one string each (default 200,000): see #interned. */
  readonly maxInterned?: number;
}

// 16 base64url chars = 96 bits: collisions are negligible for a company's headcount.
const PSEUDONYM_BYTES = 12;
/**
 * Today's pseudonyms handed out so far, each kept as one string: a bound on memory, far above a
 * company's headcount (beyond it the set starts afresh, and only interning is lost).
 */
const MAX_INTERNED = 200_000;

export class Pseudonymizer {
  readonly #clock: () => number;
  readonly #dayFormat: Intl.DateTimeFormat;
  readonly #graceMs: number;
  #key: Buffer;
  #day: string;
  /** Yesterday's key until #formerUntil, then zeroed and dropped. */
  #formerKey: Buffer | undefined;
  #formerUntil = 0;
  /**
   * Today's pseudonyms, each to its one string, so that everyone asking for a person's pseudonym
   * gets the same string: the ledger's and the acknowledgements' maps then find a person by
   * identity, where equal strings of separate connections were compared character by character
   * on every request. Keyed by the pseudonym itself: no name is kept. Emptied at each rotation.
   */
  #interned = new Map<string, Pseudonym>();
  readonly #maxInterned: number;

  constructor(o: PseudonymizerOptions) {
    try {
      // en-CA formats as YYYY-MM-DD, which sorts and compares as a plain string.
      this.#dayFormat = new Intl.DateTimeFormat('en-CA', { timeZone: o.timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    } catch (cause) {
      throw new LeewayError('LEEWAY_ERR_CONFIG', `unknown time zone: ${o.timeZone}`, { timeZone: o.timeZone }, { cause });
    }
    this.#clock = o.clock ?? Date.now;
    this.#graceMs = o.graceMs ?? 10 * 60_000;
    this.#maxInterned = o.maxInterned ?? MAX_INTERNED;
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
    const pseudonym = hmac(this.#key, subject);
    const known = this.#interned.get(pseudonym);
    if (known !== undefined) return known;
    if (this.#interned.size >= this.#maxInterned) this.#interned = new Map();
    this.#interned.set(pseudonym, pseudonym);
    return pseudonym;
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
      this.#interned = new Map();
      this.#day = today;
    }
  }

  #dropFormer(): void {
    this.#formerKey?.fill(0);
    this.#formerKey = undefined;
  }
}

/**
 * The first PSEUDONYM_BYTES of the digest, as base64url: the same text as the first 16 characters
 * of the whole digest's, but a flat string of its own. A slice of the longer one is a view into
 * it, which V8 compares and hashes through a slow path at each Map lookup.
 */
function hmac(key: Buffer, subject: string): Pseudonym {
  return createHmac('sha256', key).update(subject, 'utf8').digest().toString('base64url', 0, PSEUDONYM_BYTES) as Pseudonym;
}
