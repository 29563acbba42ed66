/** The upstream client's response parsing (RFC 9112 §4, §5, §6.3, §7.1), table-driven. */
import { describe, expect, it } from 'vitest';
import { BadResponse, ChunkedDecoder, MAX_HEAD_BYTES, headEnd, parseResponseHead } from '../../src/proxy/response-head.js';
import type { Framing } from '../../src/proxy/response-head.js';

const head = (...lines: string[]): string => `${lines.join('\r\n')}\r\n\r\n`;

describe('headEnd', () => {
  it('finds the blank line, or says the head is not all there', () => {
    const text = 'HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody';
    expect(headEnd(Buffer.from(text, 'latin1'))).toBe(text.indexOf('body'));
    expect(headEnd(Buffer.from('HTTP/1.1 200 OK\r\nA: b\r\n\r', 'latin1'))).toBe(-1);
  });

  it('finds a blank line split across two reads when resumed where the first read ended', () => {
    const first = Buffer.from('HTTP/1.1 200 OK\r\nA: b\r\n\r', 'latin1');
    const whole = Buffer.concat([first, Buffer.from('\nrest', 'latin1')]);
    expect(headEnd(whole, first.length)).toBe(whole.length - 4);
  });
});

describe('parseResponseHead', () => {
  const framings: { name: string; text: string; method?: string; status: number; statusText?: string; framing: Framing; length?: number; keepAlive: boolean }[] = [
    { name: 'Content-Length', text: head('HTTP/1.1 200 OK', 'Content-Length: 1024'), status: 200, statusText: 'OK', framing: 'length', length: 1024, keepAlive: true },
    { name: 'chunked', text: head('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked'), status: 200, framing: 'chunked', keepAlive: true },
    { name: 'chunked after another coding', text: head('HTTP/1.1 200 OK', 'Transfer-Encoding: gzip, Chunked'), status: 200, framing: 'chunked', keepAlive: true },
    { name: 'a coding other than chunked runs to the close', text: head('HTTP/1.1 200 OK', 'Transfer-Encoding: gzip'), status: 200, framing: 'close', keepAlive: false },
    { name: 'no length runs to the close', text: head('HTTP/1.1 200 OK', 'Content-Type: text/plain'), status: 200, framing: 'close', keepAlive: false },
    { name: 'HEAD has no body whatever the length', text: head('HTTP/1.1 200 OK', 'Content-Length: 5000'), method: 'HEAD', status: 200, framing: 'none', keepAlive: true },
    { name: '204 has no body', text: head('HTTP/1.1 204 No Content'), status: 204, framing: 'none', keepAlive: true },
    { name: '304 has no body', text: head('HTTP/1.1 304 Not Modified', 'Content-Length: 10'), status: 304, framing: 'none', keepAlive: true },
    { name: 'an interim 103 has no body', text: head('HTTP/1.1 103 Early Hints', 'Link: </a.css>; rel=preload'), status: 103, framing: 'none', keepAlive: true },
    { name: 'Connection: close', text: head('HTTP/1.1 200 OK', 'Connection: keep-alive, Close', 'Content-Length: 0'), status: 200, framing: 'length', length: 0, keepAlive: false },
    { name: 'HTTP/1.0 closes unless it says keep-alive', text: head('HTTP/1.0 200 OK', 'Content-Length: 3'), status: 200, framing: 'length', length: 3, keepAlive: false },
    { name: 'HTTP/1.0 with keep-alive', text: head('HTTP/1.0 200 OK', 'Connection: Keep-Alive', 'Content-Length: 3'), status: 200, framing: 'length', length: 3, keepAlive: true },
    { name: 'an empty reason phrase', text: head('HTTP/1.1 200 ', 'Content-Length: 0'), status: 200, statusText: '', framing: 'length', length: 0, keepAlive: true },
    { name: 'no reason phrase at all', text: head('HTTP/1.1 404', 'Content-Length: 0'), status: 404, statusText: '', framing: 'length', length: 0, keepAlive: true },
    { name: 'repeated equal lengths count as one (RFC 9110 §8.6)', text: head('HTTP/1.1 200 OK', 'Content-Length: 7, 7', 'content-length: 7'), status: 200, framing: 'length', length: 7, keepAlive: true },
  ];
  for (const c of framings) {
    it(`frames: ${c.name}`, () => {
      const parsed = parseResponseHead(c.text, c.method ?? 'GET');
      expect(parsed.status).toBe(c.status);
      if (c.statusText !== undefined) expect(parsed.statusText).toBe(c.statusText);
      expect(parsed.framing).toBe(c.framing);
      if (c.length !== undefined) expect(parsed.contentLength).toBe(c.length);
      expect(parsed.keepAlive).toBe(c.keepAlive);
    });
  }

  it('keeps header names as sent and trims values', () => {
    const parsed = parseResponseHead(head('HTTP/1.1 200 OK', 'X-Mixed-Case:  spaced value \t', 'Set-Cookie: a=1', 'Set-Cookie: b=2', 'Empty:'), 'GET');
    expect(parsed.rawHeaders).toEqual(['X-Mixed-Case', 'spaced value', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Empty', '']);
  });

  it('trims only spaces and tabs (RFC 9110 §5.6.3): other characters at the ends are the value\'s', () => {
    const parsed = parseResponseHead(head('HTTP/1.1 200 OK', 'X-A: \t\u00a0kept\u00a0 ', 'X-B:\t\t', 'X-C:x'), 'GET');
    expect(parsed.rawHeaders).toEqual(['X-A', '\u00a0kept\u00a0', 'X-B', '', 'X-C', 'x']);
  });

  it('says a Transfer-Encoding overrides a Content-Length (which must then not be forwarded)', () => {
    const parsed = parseResponseHead(head('HTTP/1.1 200 OK', 'Content-Length: 10', 'Transfer-Encoding: chunked'), 'GET');
    expect(parsed.framing).toBe('chunked');
    expect(parsed.lengthOverridden).toBe(true);
  });

  const bad: { name: string; text: string; why: RegExp }[] = [
    { name: 'not HTTP', text: head('SSH-2.0-OpenSSH_9.2'), why: /not HTTP\/1\.x/ },
    { name: 'HTTP/2 status line', text: head('HTTP/2 200 OK'), why: /not HTTP\/1\.x/ },
    { name: 'HTTP/1.2', text: head('HTTP/1.2 200 OK'), why: /not HTTP\/1\.x/ },
    { name: 'a two-digit status', text: head('HTTP/1.1 20 OK'), why: /three digits/ },
    { name: 'a status with letters', text: head('HTTP/1.1 2x0 OK'), why: /three digits/ },
    { name: 'a status run into its reason', text: head('HTTP/1.1 200OK'), why: /three digits/ },
    { name: 'a header without a colon', text: head('HTTP/1.1 200 OK', 'NoColon'), why: /no colon/ },
    { name: 'whitespace before the colon (smuggling)', text: head('HTTP/1.1 200 OK', 'Content-Length : 5'), why: /not a token/ },
    { name: 'an empty header name', text: head('HTTP/1.1 200 OK', ': 5'), why: /not a token/ },
    { name: 'a header name with a character beyond ASCII', text: head('HTTP/1.1 200 OK', 'X-Caf\u00e9: 1'), why: /not a token/ },
    { name: 'a header name with a separator', text: head('HTTP/1.1 200 OK', 'X(A): 1'), why: /not a token/ },
    { name: 'a folded header line', text: head('HTTP/1.1 200 OK', 'X-A: one', ' two'), why: /folded/ },
    { name: 'a non-numeric length', text: head('HTTP/1.1 200 OK', 'Content-Length: 12abc'), why: /not a number/ },
    { name: 'a negative length', text: head('HTTP/1.1 200 OK', 'Content-Length: -1'), why: /not a number/ },
    { name: 'differing lengths', text: head('HTTP/1.1 200 OK', 'Content-Length: 5', 'Content-Length: 6'), why: /differ/ },
    { name: 'differing lengths in one list', text: head('HTTP/1.1 200 OK', 'Content-Length: 5, 6'), why: /differ/ },
  ];
  for (const c of bad) {
    it(`refuses ${c.name}`, () => {
      expect(() => parseResponseHead(c.text, 'GET')).toThrow(BadResponse);
      expect(() => parseResponseHead(c.text, 'GET')).toThrow(c.why);
    });
  }
});

/** Feeds `pieces` to a decoder; returns the body, where it ended in the last piece, and any error. */
function decode(pieces: string[]): { body: string; end: number; error: string | undefined } {
  const decoder = new ChunkedDecoder();
  let body = '';
  let end = -1;
  try {
    for (const piece of pieces) {
      end = decoder.push(Buffer.from(piece, 'latin1'), 0, (data) => (body += data.toString('latin1')));
      if (end !== -1) break;
    }
  } catch (error) {
    if (!(error instanceof BadResponse)) throw error;
    return { body, end, error: error.message };
  }
  return { body, end, error: undefined };
}

describe('ChunkedDecoder', () => {
  const good: { name: string; pieces: string[]; body: string; end: number }[] = [
    { name: 'one chunk', pieces: ['5\r\nhello\r\n0\r\n\r\n'], body: 'hello', end: 15 },
    { name: 'several chunks, hex sizes in both cases', pieces: ['a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n'], body: '0123456789abcdefghij', end: 35 },
    { name: 'split at every byte', pieces: [...'3\r\nabc\r\n0\r\n\r\n'], body: 'abc', end: 1 },
    { name: 'chunk extensions ignored', pieces: ['3;name=value;other\r\nabc\r\n0;last\r\n\r\n'], body: 'abc', end: 35 },
    { name: 'trailers read and dropped', pieces: ['3\r\nabc\r\n0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n'], body: 'abc', end: 40 },
    { name: 'bytes after the end are left alone', pieces: ['1\r\nx\r\n0\r\n\r\nHTTP/1.1 200'], body: 'x', end: 11 },
    { name: 'an empty body', pieces: ['0\r\n\r\n'], body: '', end: 5 },
  ];
  for (const c of good) {
    it(`decodes ${c.name}`, () => {
      const result = decode(c.pieces);
      expect(result.error).toBeUndefined();
      expect(result.body).toBe(c.body);
      expect(result.end).toBe(c.end);
    });
  }

  it('hands chunk data on without copying it', () => {
    const input = Buffer.from('4\r\ndata\r\n0\r\n\r\n', 'latin1');
    const seen: Buffer[] = [];
    new ChunkedDecoder().push(input, 0, (piece) => seen.push(piece));
    expect(seen).toHaveLength(1);
    expect(seen[0]?.buffer).toBe(input.buffer);
  });

  it('says when the body is not finished', () => {
    expect(decode(['5\r\nhel']).end).toBe(-1);
    expect(decode(['5\r\nhello\r\n0\r\n']).end).toBe(-1);
  });

  const broken: { name: string; pieces: string[]; why: RegExp }[] = [
    { name: 'a size that is not hexadecimal', pieces: ['zz\r\n'], why: /not hexadecimal/ },
    { name: 'an empty size', pieces: ['\r\nabc'], why: /not hexadecimal/ },
    { name: 'a size too large', pieces: ['fffffffffffffff\r\n'], why: /too large/ },
    { name: 'data longer than its size', pieces: ['2\r\nabc\r\n'], why: /longer than its size/ },
    { name: 'a bare LF after the size', pieces: ['2\nab'], why: /not hexadecimal/ },
    { name: 'a CR not followed by LF', pieces: ['2\rab'], why: /CRLF/ },
    { name: 'an endless extension', pieces: [`1;${'x'.repeat(MAX_HEAD_BYTES + 1)}`], why: /extension is too long/ },
    { name: 'an endless trailer', pieces: ['0\r\n', `X: ${'y'.repeat(MAX_HEAD_BYTES + 1)}`], why: /trailer section is too large/ },
  ];
  for (const c of broken) {
    it(`refuses ${c.name}`, () => {
      expect(decode(c.pieces).error).toMatch(c.why);
    });
  }
});
