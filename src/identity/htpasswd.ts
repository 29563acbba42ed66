/**
 * An Apache-style htpasswd file (issue 3 item 6): bcrypt entries (`$2y$`, `$2a$`, `$2b$`) and
 * legacy `{SHA}` entries. Other formats (MD5-crypt `$apr1$`, crypt, plain text) are refused at
 * load, naming the file and line but never the hash.
 *
 * bcrypt costs 50-100 ms per check by design, and browsers send credentials on every request, so
 * successful checks are remembered for a few minutes under an HMAC of user and password with a
 * random in-memory key: the password itself is never stored, and a wrong password is never cached.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { LRUCache } from 'lru-cache';
import { LeewayError } from '../errors.js';

export interface HtpasswdOptions {
  /** How long a successful check is remembered. Default 5 minutes. */
  readonly cacheTtlMs?: number;
  /** Most successful checks remembered. Default 10 000. */
  readonly cacheMax?: number;
  /** Milliseconds clock for the cache; injectable for tests. */
  readonly clock?: () => number;
  /** The bcrypt comparison; injectable for tests. Default bcryptjs.compare. */
  readonly compare?: (password: string, hash: string) => Promise<boolean>;
}

type Entry = { readonly kind: 'bcrypt'; readonly hash: string } | { readonly kind: 'sha'; readonly digest: Buffer };

const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
const SHA = /^\{SHA\}([A-Za-z0-9+/]{27}=)$/;

export class Htpasswd {
  readonly #entries: ReadonlyMap<string, Entry>;
  /** A bcrypt hash of a random secret at the file's usual cost, compared for unknown users. */
  readonly #dummyHash: string;
  readonly #compare: (password: string, hash: string) => Promise<boolean>;
  readonly #cacheKey = randomBytes(32);
  readonly #cache: LRUCache<string, true>;
  /** Checks in progress, so a browser opening six connections at once pays bcrypt once. */
  readonly #inFlight = new Map<string, Promise<boolean>>();

  private constructor(entries: ReadonlyMap<string, Entry>, dummyHash: string, o: HtpasswdOptions) {
    this.#entries = entries;
    this.#dummyHash = dummyHash;
    this.#compare = o.compare ?? ((password, hash) => bcrypt.compare(password, hash));
    const clock = o.clock;
    this.#cache = new LRUCache<string, true>({
      max: o.cacheMax ?? 10_000,
      ttl: o.cacheTtlMs ?? 5 * 60_000,
      ...(clock === undefined ? {} : { perf: { now: clock }, ttlResolution: 0 }),
    });
  }

  /** Reads and parses the file once; a reload builds a new Htpasswd (and so an empty cache). */
  static async load(file: string, o: HtpasswdOptions = {}): Promise<Htpasswd> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (cause) {
      throw new LeewayError('LEEWAY_ERR_CONFIG', `${file}: cannot read htpasswd file`, { file }, { cause });
    }
    const entries = parse(file, text);
    const dummyHash = await bcrypt.hash(randomBytes(16).toString('base64url'), usualCost(entries));
    return new Htpasswd(entries, dummyHash, o);
  }

  /** Number of users in the file. */
  get size(): number {
    return this.#entries.size;
  }

  async verify(user: string, password: string): Promise<boolean> {
    const key = createHmac('sha256', this.#cacheKey).update(user, 'utf8').update('\0').update(password, 'utf8').digest('base64url');
    if (this.#cache.get(key) === true) return true;
    const pending = this.#inFlight.get(key);
    if (pending !== undefined) return pending;
    const check = this.#check(user, password).then(
      (ok) => {
        this.#inFlight.delete(key);
        if (ok) this.#cache.set(key, true);
        return ok;
      },
      (error: unknown) => {
        this.#inFlight.delete(key);
        throw error;
      },
    );
    this.#inFlight.set(key, check);
    return check;
  }

  async #check(user: string, password: string): Promise<boolean> {
    const entry = this.#entries.get(user);
    if (entry === undefined) {
      // Spend one bcrypt compare anyway so the answer time does not reveal which users exist.
      await this.#compare(password, this.#dummyHash);
      return false;
    }
    if (entry.kind === 'bcrypt') return this.#compare(password, entry.hash);
    // A {SHA} check alone takes microseconds where an unknown user takes a bcrypt: the answer time
    // would tell which names are in the file. Every check costs one bcrypt, whatever the entry.
    await this.#compare(password, this.#dummyHash);
    const digest = createHash('sha1').update(password, 'utf8').digest();
    return timingSafeEqual(digest, entry.digest);
  }
}

function parse(file: string, text: string): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = { file, line: index + 1 };
    const colon = line.indexOf(':');
    if (colon <= 0) throw new LeewayError('LEEWAY_ERR_CONFIG', `${file}:${index + 1}: expected user:hash`, where);
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    let entry: Entry;
    const sha = SHA.exec(hash);
    if (BCRYPT.test(hash)) entry = { kind: 'bcrypt', hash };
    else if (sha?.[1] !== undefined) entry = { kind: 'sha', digest: Buffer.from(sha[1], 'base64') };
    else throw new LeewayError('LEEWAY_ERR_CONFIG', `${file}:${index + 1}: unsupported password hash format (use bcrypt: htpasswd -B)`, where);
    // Apache uses the first entry for a user; a duplicate is most likely a mistake worth saying.
    if (entries.has(user)) throw new LeewayError('LEEWAY_ERR_CONFIG', `${file}:${index + 1}: user listed twice`, where);
    entries.set(user, entry);
  }
  return entries;
}

/** The most common bcrypt cost in the file (10, htpasswd's default, when there is none). */
function usualCost(entries: ReadonlyMap<string, Entry>): number {
  const counts = new Map<number, number>();
  for (const e of entries.values()) {
    if (e.kind !== 'bcrypt') continue;
    const cost = Number(e.hash.slice(4, 6));
    counts.set(cost, (counts.get(cost) ?? 0) + 1);
  }
  let best = 10;
  let bestCount = 0;
  for (const [cost, count] of counts) if (count > bestCount) [best, bestCount] = [cost, count];
  return best;
}
