/**
 * Signed, single-use "Continue" tokens for coach and suggest pages (issue 3 item 7).
 *
 * A token binds one person (pseudonym), one host and one rule to an expiry and a random nonce,
 * under an HMAC-SHA256 that only this process can compute. The proxy hands it out on the page and
 * takes it back on POST /.leeway/continue, so a token cannot be forged, replayed, or used for
 * another site or person.
 *
 * Single use is enforced by remembering the nonces still outstanding (issued, not yet redeemed, not
 * expired), capped at `maxOutstanding`: past the cap the oldest are forgotten, which only makes
 * those tokens fail (closed) and the user sees the page again. Tokens do not survive a restart
 * for the same reason.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { LeewayError } from '../errors.js';

export interface ContinueClaims {
  readonly pseudonym: string;
  /** The host the page was shown for; compared case-insensitively, trailing dot ignored. */
  readonly host: string;
  readonly site?: string;
  readonly ruleId: string;
  /** Where to send the browser after Continue (the original absolute URL). */
  readonly url: string;
  /** How long the acknowledgement lasts, from the rule. */
  readonly continueMinutes: number;
  /** Suggest pages: where choice=alternative redirects, signed so the form cannot pick it. */
  readonly alternativeUrl?: string;
}

export type ContinueRefusal = 'malformed' | 'forged' | 'expired' | 'replayed' | 'wrong-person' | 'wrong-host';

export type RedeemResult =
  | { readonly ok: true; readonly claims: ContinueClaims; readonly expiresAt: number }
  | { readonly ok: false; readonly reason: ContinueRefusal };

export interface ContinueTokensOptions {
  /** HMAC key, at least 32 bytes. Default: 32 random bytes held only in memory. */
  readonly secret?: Buffer;
  readonly clock?: () => number;
  /** Lifetime of a token. Default 10 minutes. */
  readonly ttlMs?: number;
  /** Most tokens remembered at once (issued and not yet redeemed). Default 100 000. */
  readonly maxOutstanding?: number;
}

const VERSION = 1;
const MAC_BYTES = 32;
// Original URLs can be long, but a token past this size is not one we issued.
const MAX_TOKEN_CHARS = 16_384;

type Wire = [number, string, string, string | null, string, string, number, string, number, string | null];

export class ContinueTokens {
  readonly #secret: Buffer;
  readonly #clock: () => number;
  readonly #ttlMs: number;
  readonly #max: number;
  /** nonce → expiry, in issue order (so expiries are ascending and the oldest is first). */
  readonly #outstanding = new Map<string, number>();
  /** nonce → expiry of recently redeemed tokens, only to tell "replayed" from "expired". */
  readonly #redeemed = new Map<string, number>();

  constructor(o: ContinueTokensOptions = {}) {
    if (o.secret !== undefined && o.secret.length < 32) {
      throw new LeewayError('LEEWAY_ERR_CONFIG', 'continue-token secret must be at least 32 bytes');
    }
    const ttlMs = o.ttlMs ?? 10 * 60_000;
    const max = o.maxOutstanding ?? 100_000;
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new LeewayError('LEEWAY_ERR_CONFIG', 'continue-token ttlMs must be positive');
    if (!Number.isInteger(max) || max <= 0) throw new LeewayError('LEEWAY_ERR_CONFIG', 'continue-token maxOutstanding must be a positive integer');
    this.#secret = o.secret !== undefined ? Buffer.from(o.secret) : randomBytes(32);
    this.#clock = o.clock ?? Date.now;
    this.#ttlMs = ttlMs;
    this.#max = max;
  }

  /** Tokens currently remembered (for tests and a status gauge). */
  get outstanding(): number {
    return this.#outstanding.size;
  }

  issue(claims: ContinueClaims): string {
    const now = this.#clock();
    this.#sweep(now);
    const nonce = randomBytes(16).toString('base64url');
    const exp = now + this.#ttlMs;
    const wire: Wire = [VERSION, claims.pseudonym, normaliseHost(claims.host), claims.site ?? null, claims.ruleId, claims.url, claims.continueMinutes, nonce, exp, claims.alternativeUrl ?? null];
    const payload = Buffer.from(JSON.stringify(wire), 'utf8');
    while (this.#outstanding.size >= this.#max) {
      const oldest = this.#outstanding.keys().next().value;
      if (oldest === undefined) break;
      this.#outstanding.delete(oldest);
    }
    this.#outstanding.set(nonce, exp);
    return `${payload.toString('base64url')}.${this.#mac(payload).toString('base64url')}`;
  }

  /**
   * Checks a token for this person and host and, when valid, consumes it. A refused token is not
   * consumed, so someone else's attempt cannot burn the rightful owner's token.
   */
  redeem(token: string, who: { pseudonym: string; host: string }): RedeemResult {
    const now = this.#clock();
    this.#sweep(now);
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_CHARS) return refuse('malformed');
    const dot = token.indexOf('.');
    if (dot <= 0 || dot !== token.lastIndexOf('.')) return refuse('malformed');
    const payloadText = token.slice(0, dot);
    const macText = token.slice(dot + 1);
    if (!isBase64url(payloadText) || !isBase64url(macText)) return refuse('malformed');
    const payload = Buffer.from(payloadText, 'base64url');
    const mac = Buffer.from(macText, 'base64url');
    if (mac.length !== MAC_BYTES) return refuse('malformed');
    if (!timingSafeEqual(mac, this.#mac(payload))) return refuse('forged');
    const wire = parseWire(payload);
    // A valid MAC over an unreadable payload means a bug or an old format: not a forgery.
    if (wire === undefined) return refuse('malformed');
    const [, pseudonym, host, site, ruleId, url, continueMinutes, nonce, exp, alternativeUrl] = wire;
    if (exp <= now) return refuse('expired');
    if (this.#redeemed.has(nonce)) return refuse('replayed');
    // Not outstanding and not redeemed: forgotten past the cap or issued before a restart.
    if (!this.#outstanding.has(nonce)) return refuse('expired');
    if (pseudonym !== who.pseudonym) return refuse('wrong-person');
    if (host !== normaliseHost(who.host)) return refuse('wrong-host');
    this.#outstanding.delete(nonce);
    this.#redeemed.set(nonce, exp);
    while (this.#redeemed.size > this.#max) {
      const oldest = this.#redeemed.keys().next().value;
      if (oldest === undefined) break;
      this.#redeemed.delete(oldest);
    }
    const claims: ContinueClaims = {
      pseudonym,
      host,
      ...(site === null ? {} : { site }),
      ruleId,
      url,
      continueMinutes,
      ...(alternativeUrl === null ? {} : { alternativeUrl }),
    };
    return { ok: true, claims, expiresAt: exp };
  }

  #mac(payload: Buffer): Buffer {
    return createHmac('sha256', this.#secret).update(payload).digest();
  }

  #sweep(now: number): void {
    sweepExpired(this.#outstanding, now);
    sweepExpired(this.#redeemed, now);
  }
}

function refuse(reason: ContinueRefusal): RedeemResult {
  return { ok: false, reason };
}

/** Entries were inserted with ascending expiry (fixed TTL, monotone-ish clock): stop at the first live one. */
function sweepExpired(map: Map<string, number>, now: number): void {
  for (const [nonce, exp] of map) {
    if (exp > now) break;
    map.delete(nonce);
  }
}

function normaliseHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

function isBase64url(s: string): boolean {
  return s.length > 0 && /^[A-Za-z0-9_-]+$/.test(s);
}

function parseWire(payload: Buffer): Wire | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length !== 10 || value[0] !== VERSION) return undefined;
  const [, pseudonym, host, site, ruleId, url, minutes, nonce, exp, alternativeUrl] = value as unknown[];
  if (typeof pseudonym !== 'string' || typeof host !== 'string' || (site !== null && typeof site !== 'string')) return undefined;
  if (typeof ruleId !== 'string' || typeof url !== 'string' || typeof nonce !== 'string') return undefined;
  if (typeof minutes !== 'number' || typeof exp !== 'number') return undefined;
  if (alternativeUrl !== null && typeof alternativeUrl !== 'string') return undefined;
  return [VERSION, pseudonym, host, site, ruleId, url, minutes, nonce, exp, alternativeUrl];
}
