/**
 * Request targets (RFC 9112 §3.2): absolute-form for proxied HTTP, authority-form for CONNECT.
 * Parsed by hand: new URL() costs more than the rest of the hot path and normalises things a
 * proxy must pass through untouched (the path and query are forwarded byte for byte).
 */
import { isIP } from 'node:net';
import { innerMap, setBounded } from './bounded-maps.js';

export interface RequestTarget {
  readonly scheme: 'http' | 'https';
  /** Lower-case host without brackets or trailing dot. */
  readonly host: string;
  readonly port: number;
  /** Origin-form path with query, as sent. */
  readonly path: string;
  /** Path without the query (what policies match on). */
  readonly pathOnly: string;
}

export function parseAbsoluteTarget(url: string): RequestTarget | undefined {
  let scheme: 'http' | 'https';
  let start: number;
  if (url.startsWith('http://')) {
    scheme = 'http';
    start = 7;
  } else if (url.startsWith('https://')) {
    scheme = 'https';
    start = 8;
  } else {
    return undefined;
  }
  let end = url.length;
  for (let i = start; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */) {
      end = i;
      break;
    }
  }
  const authority = parseAuthority(url.slice(start, end), scheme === 'https' ? 443 : 80);
  if (authority === undefined) return undefined;
  let path = end === url.length ? '/' : url.slice(end);
  const hash = path.indexOf('#');
  if (hash !== -1) path = path.slice(0, hash);
  if (path.charCodeAt(0) === 63) path = `/${path}`;
  const query = path.indexOf('?');
  return { scheme, host: authority.host, port: authority.port, path, pathOnly: query === -1 ? path : path.slice(0, query) };
}

/** Origin-form path (intercepted requests): the target comes from the CONNECT. */
export function originFormTarget(scheme: 'http' | 'https', host: string, port: number, url: string): RequestTarget {
  const path = url.charCodeAt(0) === 47 ? url : `/${url}`;
  const query = path.indexOf('?');
  return { scheme, host, port, path, pathOnly: query === -1 ? path : path.slice(0, query) };
}

export interface Authority {
  readonly host: string;
  readonly port: number;
}

/**
 * Authorities already parsed, per default port: a proxy sees the same few hosts over and over,
 * and parsing one (two regular expressions, a lower-casing, slices) took about 1 µs of a 1 KiB
 * request's path. The result is a pure function of the text, so nothing ever invalidates it;
 * the memo is bounded by starting afresh when full.
 */
const parsedAuthorities = new Map<number, Map<string, Authority>>();
const MAX_PARSED_AUTHORITIES = 4_096;

/** `host:port`, `[v6]:port` or a bare host (then `defaultPort`). Userinfo is refused. */
export function parseAuthority(authority: string, defaultPort: number): Authority | undefined {
  const memo = innerMap(parsedAuthorities, defaultPort, MAX_PARSED_AUTHORITIES);
  const known = memo.get(authority);
  if (known !== undefined) return known;
  const parsed = parseAuthorityText(authority, defaultPort);
  if (parsed !== undefined) setBounded(memo, authority, parsed, MAX_PARSED_AUTHORITIES);
  return parsed;
}

function parseAuthorityText(authority: string, defaultPort: number): Authority | undefined {
  if (authority.length === 0 || authority.includes('@')) return undefined;
  let host: string;
  let portText: string | undefined;
  if (authority.charCodeAt(0) === 91 /* [ */) {
    const close = authority.indexOf(']');
    if (close === -1) return undefined;
    host = authority.slice(1, close);
    if (isIP(host) !== 6) return undefined;
    const rest = authority.slice(close + 1);
    if (rest !== '') {
      if (rest.charCodeAt(0) !== 58) return undefined;
      portText = rest.slice(1);
    }
  } else {
    const colon = authority.lastIndexOf(':');
    if (colon !== -1) {
      host = authority.slice(0, colon);
      portText = authority.slice(colon + 1);
    } else {
      host = authority;
    }
    if (host.includes(':')) return undefined;
  }
  let port = defaultPort;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText)) return undefined;
    port = Number(portText);
    if (port < 1 || port > 65535) return undefined;
  }
  host = host.toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host.length === 0 || !/^[a-z0-9._:-]+$/.test(host)) return undefined;
  return Object.freeze({ host, port });
}
