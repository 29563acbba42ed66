/**
 * Header rewriting for forwarded messages (RFC 9110 §7.6.1 and §7.6.3). Works on Node's
 * rawHeaders arrays in one pass: no header object is built, which keeps the hot path cheap.
 */

/** Always hop-by-hop, plus the proxy credentials and the non-standard Proxy-Connection. */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'upgrade',
]);

export const VIA_VALUE = '1.1 leeway';

/** Adds the names listed in one Connection header value (RFC 9110 §7.6.1), lower-cased, to `listed`. */
function connectionListed(value: string, listed: Set<string> | undefined): Set<string> | undefined {
  const whole = value.toLowerCase();
  if (whole === 'keep-alive' || whole === 'close') return listed;
  for (const token of value.split(',')) {
    const t = token.trim().toLowerCase();
    // Hop-by-hop names are dropped (or deliberately kept, for Upgrade) by the fixed set already;
    // `close` names no header.
    if (t === '' || t === 'close' || HOP_BY_HOP.has(t)) continue;
    (listed ??= new Set()).add(t);
  }
  return listed;
}

export interface RewriteOptions {
  /**
   * Replace Host with this value: a proxy must ignore the Host of an absolute-form request
   * and use the target's authority (RFC 9112 §3.2.2). Undefined keeps Host as received.
   */
  readonly host?: string | undefined;
  /** A header to drop as well (the trusted identity header, once used). */
  readonly drop?: string | undefined;
  /** Keep Transfer-Encoding (Node re-frames the body the same way); false for HTTP/1.0 clients. */
  readonly keepTransferEncoding: boolean;
  /** Keep Connection: Upgrade and Upgrade for a WebSocket handshake. */
  readonly keepUpgrade?: boolean;
  /**
   * Drop Expect: the server side already answered `100-continue` to the client, and the
   * upstream client sends the body at once rather than wait for the origin's 100.
   */
  readonly dropExpect?: boolean;
}

// The names forwardHeaders() treats apart, told from the rest without lower-casing each name (a
// new string, then hashed for a Set lookup, for every header of every request): by length first,
// then compared letter by letter.
const OTHER = 0;
const CONNECTION = 1;
const UPGRADE = 2;
/** Connection, Upgrade and these: always hop-by-hop (HOP_BY_HOP). */
const HOP = 3;
const TRANSFER_ENCODING = 4;
const HOST = 5;
const EXPECT = 6;
const VIA = 7;

function nameCode(name: string): number {
  switch (name.length) {
    case 2: return sameName(name, 'te') ? HOP : OTHER;
    case 3: return sameName(name, 'via') ? VIA : OTHER;
    case 4: return sameName(name, 'host') ? HOST : OTHER;
    case 6: return sameName(name, 'expect') ? EXPECT : OTHER;
    case 7: return sameName(name, 'upgrade') ? UPGRADE : sameName(name, 'trailer') ? HOP : OTHER;
    case 10: return sameName(name, 'connection') ? CONNECTION : sameName(name, 'keep-alive') ? HOP : OTHER;
    case 16: return sameName(name, 'proxy-connection') ? HOP : OTHER;
    case 17: return sameName(name, 'transfer-encoding') ? TRANSFER_ENCODING : OTHER;
    case 18: return sameName(name, 'proxy-authenticate') ? HOP : OTHER;
    case 19: return sameName(name, 'proxy-authorization') ? HOP : OTHER;
    default: return OTHER;
  }
}

/** `name` equals `lower` (lower-case ASCII, the same length) but for the case of its ASCII letters. */
function sameName(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i += 1) {
    const c = name.charCodeAt(i);
    const l = lower.charCodeAt(i);
    if (c !== l && !(c >= 65 && c <= 90 && c + 32 === l)) return false;
  }
  return true;
}

/**
 * Forwardable headers as a flat [name, value, ...] array, with `Via` appended to any existing one.
 * Host stays as sent by the client; callers add it when it is missing.
 */
export function forwardHeaders(raw: readonly string[], options: RewriteOptions): string[] {
  // One pass in the usual case; only a Connection header that names other headers (rare) costs
  // a second pass over the output.
  let listed: Set<string> | undefined;
  const out: string[] = [];
  let via: string | undefined;
  const drop = options.drop;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const code = nameCode(name);
    if (code === CONNECTION || code === UPGRADE || code === HOP) {
      if (code === CONNECTION) listed = connectionListed(value, listed);
      if (options.keepUpgrade === true && code !== HOP) out.push(name, code === CONNECTION ? 'Upgrade' : value);
      continue;
    }
    if (code === TRANSFER_ENCODING && !options.keepTransferEncoding) continue;
    if (code === HOST && options.host !== undefined) continue;
    if (drop !== undefined && name.length === drop.length && name.toLowerCase() === drop) continue;
    if (code === EXPECT && options.dropExpect === true) continue;
    if (code === VIA) {
      via = via === undefined ? value : `${via}, ${value}`;
      continue;
    }
    out.push(name, value);
  }
  const kept = listed === undefined ? out : withoutListed(out, listed);
  if (options.host !== undefined) kept.push('Host', options.host);
  kept.push('Via', via === undefined ? VIA_VALUE : `${via}, ${VIA_VALUE}`);
  return kept;
}

function withoutListed(headers: readonly string[], listed: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    if (!listed.has(name.toLowerCase())) out.push(name, headers[i + 1] as string);
  }
  return out;
}

/** Find a header in a rawHeaders array (first occurrence), case-insensitively. */
export function rawHeader(raw: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) return raw[i + 1];
  }
  return undefined;
}

/** Whether a request announces a body (RFC 9112 §6.3): a Transfer-Encoding, or a Content-Length other than 0. */
export function announcesBody(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') return true;
    if (name.length === 14 && name.toLowerCase() === 'content-length' && (raw[i + 1] as string).trim() !== '0') return true;
  }
  return false;
}
