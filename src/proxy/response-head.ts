/**
 * Reading an origin's HTTP/1.x response (RFC 9112): the head (status line and header fields)
 * and the framing of the body that follows (§6.3), plus a decoder for chunked bodies (§7.1).
 * Pure functions and a small state machine over Buffers, no sockets: the upstream client in
 * forward.ts feeds them bytes as they arrive.
 */

/** How the body after a head is delimited (RFC 9112 §6.3). */
export type Framing = 'none' | 'length' | 'chunked' | 'close';

export interface ResponseHead {
  readonly status: number;
  /** The reason phrase, possibly empty. */
  readonly statusText: string;
  /** Flat [name, value, ...] as received (names keep their case). */
  readonly rawHeaders: string[];
  readonly framing: Framing;
  /** Body length for 'length' framing. */
  readonly contentLength: number;
  /** The connection may carry another request after this response. */
  readonly keepAlive: boolean;
  /** A Transfer-Encoding and a Content-Length were both sent: the length must not be forwarded (§6.3 rule 3). */
  readonly lengthOverridden: boolean;
}

/** A response head the proxy refuses to pass on; the message says why, for the 502 page and the log. */
export class BadResponse extends Error {
  override readonly name = 'BadResponse';
}

/** Bytes a response head (or a chunked body's trailer section) may take. */
export const MAX_HEAD_BYTES = 64 * 1024;

/** tchar (RFC 9110 §5.6.2) by character code: a table read per character, where a regular expression cost a call per name. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

/** text[start, end) is a token: one tchar or more. */
function isToken(text: string, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let i = start; i < end; i += 1) {
    const c = text.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return true;
}

/** Optional whitespace around a field value (RFC 9110 §5.6.3): space and horizontal tab. */
function isOws(c: number): boolean {
  return c === 32 || c === 9;
}

const DIGITS = /^\d{1,15}$/;

/**
 * Where the head in `buffer` ends (the index just after its blank line), or -1 when it has not
 * all arrived. `from` lets a caller resume the search where the previous bytes ended.
 */
export function headEnd(buffer: Buffer, from = 0): number {
  const at = buffer.indexOf('\r\n\r\n', from > 3 ? from - 3 : 0, 'latin1');
  return at === -1 ? -1 : at + 4;
}

/**
 * Parses a response head (the bytes up to and including the blank line, as latin1 text) for a
 * request with `method`. Throws BadResponse for anything a strict HTTP/1.1 recipient rejects.
 */
export function parseResponseHead(text: string, method: string): ResponseHead {
  let lineEnd = text.indexOf('\r\n');
  if (lineEnd === -1) throw new BadResponse('the status line does not end');
  // "HTTP/1.x NNN[ reason]": the version, one space, three digits, then a space and the reason.
  if (lineEnd < 12 || !text.startsWith('HTTP/1.') || text.charCodeAt(8) !== 32) throw new BadResponse('the status line is not HTTP/1.x');
  const minor = text.charCodeAt(7) - 48;
  if (minor !== 0 && minor !== 1) throw new BadResponse('the status line is not HTTP/1.x');
  const status = statusCode(text);
  if (status < 100) throw new BadResponse('the status code is not three digits');
  let statusText = '';
  if (lineEnd > 12) {
    if (text.charCodeAt(12) !== 32) throw new BadResponse('the status code is not three digits');
    statusText = text.slice(13, lineEnd);
  }
  const rawHeaders: string[] = [];
  let contentLength = -1;
  let transferEncoding: string | undefined;
  let connection: string | undefined;
  let start = lineEnd + 2;
  for (;;) {
    lineEnd = text.indexOf('\r\n', start);
    if (lineEnd === -1) throw new BadResponse('the head does not end with an empty line');
    if (lineEnd === start) break;
    const first = text.charCodeAt(start);
    // Obsolete line folding (RFC 9112 §5.2): refused, as Node's own parser does.
    if (first === 32 || first === 9) throw new BadResponse('a header line is folded');
    const colon = text.indexOf(':', start);
    if (colon === -1 || colon > lineEnd) throw new BadResponse('a header line has no colon');
    // Whitespace before the colon is refused (§5.1): it has served request smuggling.
    if (!isToken(text, start, colon)) throw new BadResponse('a header name is not a token');
    const name = text.slice(start, colon);
    // The value without the whitespace around it (§5.5), cut once.
    let valueStart = colon + 1;
    let valueEnd = lineEnd;
    while (valueStart < valueEnd && isOws(text.charCodeAt(valueStart))) valueStart += 1;
    while (valueEnd > valueStart && isOws(text.charCodeAt(valueEnd - 1))) valueEnd -= 1;
    const value = text.slice(valueStart, valueEnd);
    rawHeaders.push(name, value);
    start = lineEnd + 2;
    // Only three names matter for framing; the length and first letter rule out the rest without lower-casing.
    const length = name.length;
    if (length === 10 || length === 14 || length === 17) {
      const first = name.charCodeAt(0) | 0x20;
      if (length === 10 && first === 99 /* c */ && name.toLowerCase() === 'connection') connection = connection === undefined ? value : `${connection}, ${value}`;
      else if (length === 14 && first === 99 && name.toLowerCase() === 'content-length') contentLength = lengthValue(value, contentLength);
      else if (length === 17 && first === 116 /* t */ && name.toLowerCase() === 'transfer-encoding') transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
    }
  }
  const options = connection === undefined ? 0 : connectionOptions(connection);
  const keepAlive = (options & CLOSE) === 0 && (minor === 1 || (options & KEEP_ALIVE) !== 0);
  const lengthOverridden = transferEncoding !== undefined && contentLength !== -1;
  // No body whatever the headers say (§6.3 rule 1); the connection stays usable.
  if (method === 'HEAD' || status < 200 || status === 204 || status === 304) {
    return { status, statusText, rawHeaders, framing: 'none', contentLength: 0, keepAlive, lengthOverridden: false };
  }
  if (transferEncoding !== undefined) {
    // Chunked last: decoded here and framed again for the client; otherwise the body runs to the close (§6.3 rule 4).
    const chunked = lastCoding(transferEncoding) === 'chunked';
    return { status, statusText, rawHeaders, framing: chunked ? 'chunked' : 'close', contentLength: 0, keepAlive: chunked && keepAlive, lengthOverridden };
  }
  if (contentLength !== -1) return { status, statusText, rawHeaders, framing: 'length', contentLength, keepAlive, lengthOverridden: false };
  return { status, statusText, rawHeaders, framing: 'close', contentLength: 0, keepAlive: false, lengthOverridden: false };
}

function statusCode(text: string): number {
  let code = 0;
  for (let i = 9; i < 12; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    code = code * 10 + digit;
  }
  return code;
}

/** A Content-Length value; a list of equal values counts as one (RFC 9110 §8.6), differing ones are refused. */
function lengthValue(value: string, previous: number): number {
  let length: number;
  if (DIGITS.test(value)) {
    length = Number(value);
  } else {
    const parts = value.split(',').map((part) => part.trim());
    if (!parts.every((part) => DIGITS.test(part))) throw new BadResponse('the Content-Length is not a number');
    length = Number(parts[0]);
    if (parts.some((part) => Number(part) !== length)) throw new BadResponse('the Content-Length values differ');
  }
  if (previous !== -1 && previous !== length) throw new BadResponse('the Content-Length values differ');
  return length;
}

const CLOSE = 1;
const KEEP_ALIVE = 2;

/** The Connection options that matter here, as CLOSE | KEEP_ALIVE bits. */
function connectionOptions(list: string): number {
  const whole = list.toLowerCase();
  // The usual value is one option alone: no split for it.
  if (whole === 'keep-alive') return KEEP_ALIVE;
  if (whole === 'close') return CLOSE;
  let options = 0;
  for (const part of whole.split(',')) {
    const option = part.trim();
    if (option === 'close') options |= CLOSE;
    else if (option === 'keep-alive') options |= KEEP_ALIVE;
  }
  return options;
}

function lastCoding(list: string): string {
  const comma = list.lastIndexOf(',');
  const last = (comma === -1 ? list : list.slice(comma + 1)).trim().toLowerCase();
  const semicolon = last.indexOf(';');
  return semicolon === -1 ? last : last.slice(0, semicolon).trim();
}

const enum ChunkState {
  Size,
  Extension,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  Trailer,
  TrailerLf,
  Done,
}

/**
 * Decodes a chunked body (RFC 9112 §7.1) as bytes arrive: chunk data is handed on as slices of
 * the input (no copy), extensions and trailers are read and dropped (Node frames the body again
 * for the client, and trailers are not forwarded).
 */
export class ChunkedDecoder {
  #state = ChunkState.Size;
  #remaining = 0;
  #sizeDigits = 0;
  /** Bytes of the current extension or trailer line, bounded like a head. */
  #lineBytes = 0;
  /** Whether the current trailer line has any byte (an empty one ends the body). */
  #trailerLine = false;

  get done(): boolean {
    return this.#state === ChunkState.Done;
  }

  /**
   * Consumes `chunk` from `offset`, calling `data` for each piece of body. Returns the index just
   * after the body's end when it ends in this chunk (bytes after it belong to no message), else
   * -1. Throws BadResponse on a framing error.
   */
  push(chunk: Buffer, offset: number, data: (piece: Buffer) => void): number {
    let i = offset;
    const length = chunk.length;
    while (i < length) {
      switch (this.#state) {
        case ChunkState.Size: {
          const c = chunk[i] as number;
          const digit = hexDigit(c);
          if (digit !== -1) {
            // 13 hex digits stay below 2^53; no body that large is real.
            if (++this.#sizeDigits > 13) throw new BadResponse('a chunk size is too large');
            this.#remaining = this.#remaining * 16 + digit;
            i++;
          } else if (this.#sizeDigits === 0) {
            throw new BadResponse('a chunk size is not hexadecimal');
          } else if (c === 13) {
            this.#state = ChunkState.SizeLf;
            i++;
          } else if (c === 59 /* ; */ || c === 32 || c === 9) {
            this.#state = ChunkState.Extension;
            this.#lineBytes = 0;
            i++;
          } else {
            throw new BadResponse('a chunk size is not hexadecimal');
          }
          break;
        }
        case ChunkState.Extension: {
          const cr = chunk.indexOf(13, i);
          const end = cr === -1 ? length : cr;
          this.#lineBytes += end - i;
          if (this.#lineBytes > MAX_HEAD_BYTES) throw new BadResponse('a chunk extension is too long');
          i = end;
          if (cr !== -1) {
            this.#state = ChunkState.SizeLf;
            i++;
          }
          break;
        }
        case ChunkState.SizeLf:
          if (chunk[i] !== 10) throw new BadResponse('a chunk size line does not end with CRLF');
          i++;
          this.#sizeDigits = 0;
          if (this.#remaining === 0) {
            this.#state = ChunkState.Trailer;
            this.#lineBytes = 0;
            this.#trailerLine = false;
          } else {
            this.#state = ChunkState.Data;
          }
          break;
        case ChunkState.Data: {
          const take = Math.min(this.#remaining, length - i);
          data(i === 0 && take === length ? chunk : chunk.subarray(i, i + take));
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#state = ChunkState.DataCr;
          break;
        }
        case ChunkState.DataCr:
          if (chunk[i] !== 13) throw new BadResponse('chunk data is longer than its size');
          this.#state = ChunkState.DataLf;
          i++;
          break;
        case ChunkState.DataLf:
          if (chunk[i] !== 10) throw new BadResponse('chunk data does not end with CRLF');
          this.#state = ChunkState.Size;
          i++;
          break;
        case ChunkState.Trailer: {
          const c = chunk[i] as number;
          i++;
          if (c === 13) {
            this.#state = ChunkState.TrailerLf;
          } else {
            this.#trailerLine = true;
            if (++this.#lineBytes > MAX_HEAD_BYTES) throw new BadResponse('the trailer section is too large');
          }
          break;
        }
        case ChunkState.TrailerLf:
          if (chunk[i] !== 10) throw new BadResponse('a trailer line does not end with CRLF');
          i++;
          if (!this.#trailerLine) {
            this.#state = ChunkState.Done;
            return i;
          }
          this.#trailerLine = false;
          this.#state = ChunkState.Trailer;
          break;
        case ChunkState.Done:
          return i;
      }
    }
    return -1;
  }
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}
