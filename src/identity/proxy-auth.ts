/**
 * Basic proxy authentication (RFC 7617 over RFC 9110 §11.7.1-2: Proxy-Authorization / Proxy-Authenticate).
 * Pure parsing: no I/O, nothing remembered.
 */

export interface BasicCredentials {
  readonly user: string;
  readonly password: string;
}

// RFC 7617 §2: token68 is base64 (standard alphabet, optional padding).
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Parses `Basic <base64(user:password)>`. The scheme is case-insensitive (RFC 9110 §11.1);
 * the password may contain `:` since only the first colon separates (RFC 7617 §2).
 * Anything malformed gives undefined, so callers answer 407 rather than throw.
 */
export function parseBasicProxyAuthorization(header: string | undefined): BasicCredentials | undefined {
  if (header === undefined) return undefined;
  const trimmed = header.trim();
  const space = trimmed.search(/[ \t]/);
  if (space <= 0) return undefined;
  if (trimmed.slice(0, space).toLowerCase() !== 'basic') return undefined;
  const token = trimmed.slice(space).trim();
  if (token.length === 0 || token.length % 4 === 1 || !BASE64.test(token)) return undefined;
  const decoded = Buffer.from(token, 'base64');
  // RFC 7617 §2.1: UTF-8 is the only charset we announce; reject bytes that are not valid UTF-8.
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(decoded);
  } catch {
    return undefined;
  }
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  const user = text.slice(0, colon);
  const password = text.slice(colon + 1);
  // RFC 7617 §2: user-id must not contain control characters; an empty user is useless to us.
  if (user.length === 0 || hasControlChar(user) || hasControlChar(password)) return undefined;
  return { user, password };
}

/** The challenge sent with a 407. The realm is quoted (RFC 9110 §11.5 quoted-string). */
export function proxyAuthenticateHeader(realm: string): string {
  const safe = [...realm].filter((c) => !hasControlChar(c)).join('').replace(/["\\]/g, (c) => `\\${c}`);
  return `Basic realm="${safe}", charset="UTF-8"`;
}

function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
