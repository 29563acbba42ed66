/**
 * A bounded cache of per-host TLS secure contexts signed by the interception CA.
 * Bounded (LRU) so a client touching millions of hosts cannot grow memory without limit;
 * concurrent requests for one host share one mint.
 */
import { createSecureContext, type SecureContext } from 'node:tls';
import { LRUCache } from 'lru-cache';
import type { LoadedCa } from './ca.js';
import { DEFAULT_LEAF_VALIDITY_DAYS, generateLeafKey, mintLeafCertificate, normaliseCertificateHost, type LeafKey, type LeafKeyType } from './leaf-certificate.js';

const DAY_MS = 86_400_000;

export interface CertificateStoreOptions {
  readonly ca: LoadedCa;
  /** Maximum number of hosts kept (settings.tls.certCacheSize). */
  readonly cacheSize: number;
  /** Milliseconds since the epoch; tests pass a fake clock. */
  readonly clock?: () => number;
  readonly leafKeyType?: LeafKeyType;
  readonly validityDays?: number;
  /** Called after each mint, e.g. to count `leeway_tls_certificates_minted_total`. */
  readonly onMint?: () => void;
}

interface CacheEntry {
  readonly context: SecureContext;
  readonly certPem: string;
  readonly notAfter: number;
}

export class CertificateStore {
  readonly #ca: LoadedCa;
  readonly #clock: () => number;
  readonly #leafKey: LeafKey;
  readonly #validityDays: number;
  readonly #cache: LRUCache<string, CacheEntry>;
  readonly #inFlight = new Map<string, Promise<CacheEntry>>();
  readonly #onMint: (() => void) | undefined;
  #minted = 0;

  constructor(options: CertificateStoreOptions) {
    if (!Number.isInteger(options.cacheSize) || options.cacheSize < 1) {
      throw new RangeError(`cacheSize must be a positive integer, got ${options.cacheSize}`);
    }
    this.#ca = options.ca;
    this.#clock = options.clock ?? Date.now;
    this.#validityDays = options.validityDays ?? DEFAULT_LEAF_VALIDITY_DAYS;
    if (this.#validityDays < 2) throw new RangeError('validityDays must be at least 2 (leaves are renewed a day before they end)');
    this.#leafKey = generateLeafKey(options.leafKeyType ?? 'ec');
    this.#cache = new LRUCache({ max: options.cacheSize });
    this.#onMint = options.onMint;
  }

  /** Hosts currently cached, for `leeway_tls_certificate_cache_entries`. */
  get size(): number {
    return this.#cache.size;
  }

  /** Certificates minted since start, for `leeway_tls_certificates_minted_total`. */
  get minted(): number {
    return this.#minted;
  }

  /** The PEM of the CA, to serve at /.leeway/ca.pem. */
  get caCertPem(): string {
    return this.#ca.certPem;
  }

  async secureContextFor(host: string): Promise<SecureContext> {
    return (await this.#entryFor(host)).context;
  }

  /** The leaf certificate PEM for a host (minting it if needed); for tests and diagnostics. */
  async certificatePemFor(host: string): Promise<string> {
    return (await this.#entryFor(host)).certPem;
  }

  #entryFor(rawHost: string): Promise<CacheEntry> {
    const host = normaliseCertificateHost(rawHost);
    const cached = this.#cache.get(host);
    // Renewed a day early so no client ever meets an expired leaf from a long-running proxy.
    if (cached !== undefined && cached.notAfter - this.#clock() > DAY_MS) return Promise.resolve(cached);
    const pending = this.#inFlight.get(host);
    if (pending !== undefined) return pending;
    // Deferred one turn so every caller in the current tick joins the same mint.
    const minting = new Promise<CacheEntry>((resolve, reject) => {
      setImmediate(() => {
        try {
          resolve(this.#mint(host));
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    }).finally(() => this.#inFlight.delete(host));
    this.#inFlight.set(host, minting);
    return minting;
  }

  #mint(host: string): CacheEntry {
    const { certPem, notAfter } = mintLeafCertificate({
      host,
      ca: this.#ca,
      leafKey: this.#leafKey,
      now: this.#clock(),
      validityDays: this.#validityDays,
    });
    const context = createSecureContext({ key: this.#leafKey.privateKeyPem, cert: certPem });
    const entry = { context, certPem, notAfter };
    this.#minted += 1;
    this.#cache.set(host, entry);
    this.#onMint?.();
    return entry;
  }
}
