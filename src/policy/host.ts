/**
 * Host names as the policy sees them, and the domain suffix index that classifies them.
 * Lookup walks the labels from the longest suffix, so it costs O(labels), not O(domains).
 */
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';

// Already-normal names (the common case) skip the slower normalisation path.
const PLAIN_HOST = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;

/**
 * Lower case, trailing dot removed, IDN → punycode, port and IPv6 brackets removed.
 * Returns '' when nothing usable is left.
 */
export function normalizeHost(raw: string): string {
  if (PLAIN_HOST.test(raw)) return raw;
  let host = raw.trim();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    host = end === -1 ? host.slice(1) : host.slice(1, end);
    return host.toLowerCase();
  }
  // One colon means host:port; several mean a bare IPv6 literal.
  const colon = host.indexOf(':');
  if (colon !== -1 && colon === host.lastIndexOf(':')) host = host.slice(0, colon);
  if (isIP(host) === 6) return host.toLowerCase();
  while (host.endsWith('.')) host = host.slice(0, -1);
  host = host.toLowerCase();
  if (PLAIN_HOST.test(host) || isIP(host) !== 0) return host;
  const ascii = domainToASCII(host);
  return ascii === '' ? host : ascii;
}

/** True for IPv4 and IPv6 literals (after normalisation). */
export function isIpLiteral(host: string): boolean {
  return isIP(host) !== 0;
}

export interface DomainEntry<T> {
  readonly value: T;
  /** The list entry that matched, for explain. */
  readonly domain: string;
}

/**
 * Map from a domain suffix to a value. IP literals are stored and matched whole (no suffix walk),
 * so `10.0.0.1` never matches an entry `0.0.1`.
 */
export class DomainIndex<T> {
  private readonly map = new Map<string, T>();

  get size(): number {
    return this.map.size;
  }

  /** Adds unless present: the first definition wins. Returns false when the domain was already there. */
  add(domain: string, value: T): boolean {
    const key = normalizeHost(domain);
    if (key === '' || this.map.has(key)) return false;
    this.map.set(key, value);
    return true;
  }

  has(domain: string): boolean {
    return this.map.has(domain);
  }

  /** Longest-suffix match of an already normalised host. */
  lookup(host: string): T | undefined {
    const map = this.map;
    let hit = map.get(host);
    if (hit !== undefined) return hit;
    if (isIpLiteralFast(host)) return undefined;
    let dot = host.indexOf('.');
    while (dot !== -1) {
      hit = map.get(host.slice(dot + 1));
      if (hit !== undefined) return hit;
      dot = host.indexOf('.', dot + 1);
    }
    return undefined;
  }

  /** Like lookup, also naming the suffix that matched. */
  lookupEntry(host: string): DomainEntry<T> | undefined {
    let suffix = host;
    for (;;) {
      const hit = this.map.get(suffix);
      if (hit !== undefined) return { value: hit, domain: suffix };
      if (isIpLiteralFast(host)) return undefined;
      const dot = suffix.indexOf('.');
      if (dot === -1) return undefined;
      suffix = suffix.slice(dot + 1);
    }
  }
}

function isIpLiteralFast(host: string): boolean {
  const last = host.charCodeAt(host.length - 1);
  // A host name's last label is never all digits, so only these can be IP literals.
  if (host.includes(':')) return true;
  return last >= 48 && last <= 57 && isIP(host) === 4;
}

/** Parse a SquidGuard/UT1 `domains` file: one domain a line, `#` comments, blank lines. */
export function parseDomainList(text: string): { domains: string[]; bad: { line: number; text: string }[] } {
  const domains: string[] = [];
  const bad: { line: number; text: string }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    const hash = raw.indexOf('#');
    const entry = (hash === -1 ? raw : raw.slice(0, hash)).trim();
    if (entry === '') continue;
    if (/[\s/]/.test(entry)) bad.push({ line: i + 1, text: entry });
    else domains.push(entry);
  }
  return { domains, bad };
}

export interface RawHostClass {
  /** The normalised host. */
  readonly host: string;
  readonly category: string | undefined;
  readonly site: string | undefined;
}

const CLASSIFY_CACHE_SIZE = 65_536;

interface HostEntry {
  category: string | undefined;
  site: string | undefined;
}

/**
 * One map for categories and sites, so a host is classified in a single label walk. Each is the
 * longest-suffix match on its own: `m.example.com` may take its site from `example.com` and its
 * category from `m.example.com`.
 */
export class HostClassifier {
  private readonly map = new Map<string, HostEntry>();
  private categoryDomains = 0;

  /** Number of distinct domains carrying a category. */
  get domainCount(): number {
    return this.categoryDomains;
  }

  /** First definition wins; returns false when the domain already had a category. */
  addCategory(domain: string, category: string): boolean {
    const key = normalizeHost(domain);
    if (key === '') return false;
    const entry = this.map.get(key);
    if (entry === undefined) {
      this.map.set(key, { category, site: undefined });
    } else if (entry.category === undefined) {
      entry.category = category;
    } else {
      return false;
    }
    this.categoryDomains++;
    return true;
  }

  addSite(domain: string, site: string): boolean {
    const key = normalizeHost(domain);
    if (key === '') return false;
    const entry = this.map.get(key);
    if (entry === undefined) this.map.set(key, { category: undefined, site });
    else if (entry.site === undefined) entry.site = site;
    else return false;
    return true;
  }

  private readonly cache = new Map<string, RawHostClass>();

  /**
   * Normalise and classify a host as the client wrote it, memoised: traffic returns to the same
   * few thousand hosts, so most requests cost one Map lookup. The memo is bounded (cleared when
   * full) and never changes an answer, so decide() stays pure.
   */
  classifyRaw(raw: string): RawHostClass {
    let hit = this.cache.get(raw);
    if (hit !== undefined) return hit;
    const host = normalizeHost(raw);
    const { category, site } = this.classify(host);
    hit = { host, category, site };
    if (this.cache.size >= CLASSIFY_CACHE_SIZE) this.cache.clear();
    this.cache.set(raw, hit);
    return hit;
  }

  /** Classify an already normalised host. */
  classify(host: string): { category: string | undefined; site: string | undefined } {
    const map = this.map;
    let category: string | undefined;
    let site: string | undefined;
    const whole = map.get(host);
    if (whole !== undefined) {
      category = whole.category;
      site = whole.site;
      if (category !== undefined && site !== undefined) return { category, site };
    }
    if (!isIpLiteralFast(host)) {
      let dot = host.indexOf('.');
      while (dot !== -1) {
        const entry = map.get(host.slice(dot + 1));
        if (entry !== undefined) {
          category ??= entry.category;
          site ??= entry.site;
          if (category !== undefined && site !== undefined) break;
        }
        dot = host.indexOf('.', dot + 1);
      }
    }
    return { category, site };
  }
}
