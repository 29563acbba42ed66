/**
 * The SNI parser on real ClientHello bytes: node:tls writes them into an in-memory Duplex (no
 * socket), and every truncation or corruption of them must be answered without a throw.
 */
import { connect as tlsConnect } from 'node:tls';
import { Duplex, PassThrough } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello, peekClientHello } from '../../src/tls/client-hello.js';

/** The first flight node:tls sends for these options, captured from an in-memory Duplex. */
async function captureClientHello(options: { servername?: string; maxVersion?: 'TLSv1.2' | 'TLSv1.3' }): Promise<Buffer> {
  const written: Buffer[] = [];
  let resolveFirst: () => void = () => undefined;
  const first = new Promise<void>((resolve) => (resolveFirst = resolve));
  const wire = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      written.push(chunk);
      resolveFirst();
      callback();
    },
  });
  const tls = tlsConnect({ socket: wire, ...options, rejectUnauthorized: true });
  tls.on('error', () => undefined);
  await first;
  tls.destroy();
  return Buffer.concat(written);
}

/** A ClientHello split into records of at most `size` handshake bytes (legal, RFC 8446 §5.1). */
function fragment(hello: Buffer, size: number): Buffer {
  const body = hello.subarray(5);
  const records: Buffer[] = [];
  for (let at = 0; at < body.length; at += size) {
    const part = body.subarray(at, at + size);
    records.push(Buffer.from([0x16, 0x03, 0x01, part.length >> 8, part.length & 0xff]), part);
  }
  return Buffer.concat(records);
}

describe('parseClientHello on real ClientHellos', async () => {
  const cases = [
    { name: 'TLS 1.3 with a host name', options: { servername: 'social.test' }, serverName: 'social.test' },
    { name: 'TLS 1.2 with a host name', options: { servername: 'bank.test', maxVersion: 'TLSv1.2' as const }, serverName: 'bank.test' },
    { name: 'upper case and a long name', options: { servername: `WWW.${'a'.repeat(60)}.Example.ORG` }, serverName: `www.${'a'.repeat(60)}.example.org` },
    { name: 'no SNI (an IP literal host)', options: {}, serverName: undefined },
  ];
  const hellos = await Promise.all(cases.map(async (c) => ({ ...c, hello: await captureClientHello(c.options) })));

  it.each(hellos)('$name → $serverName', ({ hello, serverName }) => {
    expect(hello[0]).toBe(0x16);
    expect(parseClientHello(hello)).toEqual({ kind: 'client-hello', serverName });
  });

  it.each(hellos)('$name: every proper prefix is incomplete, never a wrong answer', ({ hello }) => {
    for (let length = 0; length < hello.length; length += 1) expect(parseClientHello(hello.subarray(0, length)).kind).toBe('incomplete');
  });

  it.each(hellos)('$name: split across records of 7 bytes is read whole', ({ hello, serverName }) => {
    expect(parseClientHello(fragment(hello, 7))).toEqual({ kind: 'client-hello', serverName });
  });

  it.each(hellos)('$name: single corrupted bytes never throw', ({ hello }) => {
    for (let at = 0; at < hello.length; at += 1) {
      for (const value of [0x00, 0xff, hello[at]! ^ 0x80]) {
        const copy = Buffer.from(hello);
        copy[at] = value;
        const result = parseClientHello(copy);
        expect(['incomplete', 'not-client-hello', 'client-hello']).toContain(result.kind);
      }
    }
  });

  it('bytes after the ClientHello (the client sent more) do not matter', () => {
    const hello = hellos[0]!.hello;
    expect(parseClientHello(Buffer.concat([hello, Buffer.from('trailing')]))).toEqual({ kind: 'client-hello', serverName: 'social.test' });
  });
});

describe('parseClientHello on what is not a ClientHello', () => {
  const bigLength = MAX_CLIENT_HELLO_BYTES + 1;
  it.each([
    { name: 'plain HTTP', bytes: Buffer.from('GET / HTTP/1.1\r\n\r\n') },
    { name: 'SSH banner', bytes: Buffer.from('SSH-2.0-OpenSSH_9.2\r\n') },
    { name: 'a TLS alert record', bytes: Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]) },
    { name: 'a handshake record that is not a ClientHello', bytes: Buffer.from([0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00]) },
    { name: 'an oversized record length', bytes: Buffer.from([0x16, 0x03, 0x01, 0x40, 0x01]) },
    { name: 'an empty record', bytes: Buffer.from([0x16, 0x03, 0x01, 0x00, 0x00]) },
    { name: 'a ClientHello claiming more than the cap', bytes: Buffer.from([0x16, 0x03, 0x01, 0x00, 0x04, 0x01, bigLength >> 16, (bigLength >> 8) & 0xff, bigLength & 0xff]) },
    { name: 'a ClientHello body too short for its fields', bytes: Buffer.from([0x16, 0x03, 0x01, 0x00, 0x06, 0x01, 0x00, 0x00, 0x02, 0x03, 0x03]) },
  ])('$name → not-client-hello', ({ bytes }) => {
    expect(parseClientHello(bytes)).toEqual({ kind: 'not-client-hello' });
  });
});

describe('peekClientHello', () => {
  it('reads across chunks, leaves the socket paused, and hands back every byte read', async () => {
    const hello = await captureClientHello({ servername: 'social.test' });
    const socket = new PassThrough();
    const head = hello.subarray(0, 3);
    const done = vi.fn();
    peekClientHello(socket, head, { timeoutMs: 60_000 }, done);
    socket.write(hello.subarray(3, 100));
    await new Promise((resolve) => setImmediate(resolve));
    expect(done).not.toHaveBeenCalled();
    socket.write(Buffer.concat([hello.subarray(100), Buffer.from('x')]));
    await new Promise((resolve) => setImmediate(resolve));
    expect(done).toHaveBeenCalledTimes(1);
    const result = done.mock.calls[0]![0] as { serverName: string; bytes: Buffer };
    expect(result.serverName).toBe('social.test');
    expect(Buffer.concat([result.bytes])).toEqual(Buffer.concat([hello, Buffer.from('x')]));
    expect(socket.isPaused()).toBe(true);
    expect(socket.listenerCount('data')).toBe(0);
  });

  it('decides at once on bytes already in head', async () => {
    const hello = await captureClientHello({ servername: 'bank.test' });
    const done = vi.fn();
    peekClientHello(new PassThrough(), hello, { timeoutMs: 60_000 }, done);
    expect(done).toHaveBeenCalledWith({ serverName: 'bank.test', bytes: hello });
  });

  it('gives up after the timeout with no name and the bytes so far', () => {
    vi.useFakeTimers();
    try {
      const done = vi.fn();
      peekClientHello(new PassThrough(), Buffer.from([0x16]), { timeoutMs: 50 }, done);
      vi.advanceTimersByTime(49);
      expect(done).not.toHaveBeenCalled();
      vi.advanceTimersByTime(1);
      expect(done).toHaveBeenCalledWith({ serverName: undefined, bytes: Buffer.from([0x16]) });
    } finally {
      vi.useRealTimers();
    }
  });

  it('stops when told (the origin spoke first), with no name and the bytes so far, once only', () => {
    const socket = new PassThrough();
    const done = vi.fn();
    const stop = peekClientHello(socket, Buffer.from([0x16, 0x03]), { timeoutMs: 60_000 }, done);
    stop();
    stop();
    expect(done).toHaveBeenCalledTimes(1);
    expect(done).toHaveBeenCalledWith({ serverName: undefined, bytes: Buffer.from([0x16, 0x03]) });
    expect(socket.listenerCount('data')).toBe(0);
  });

  it('reports a client that went away', async () => {
    const socket = new PassThrough();
    const done = vi.fn();
    peekClientHello(socket, Buffer.alloc(0), { timeoutMs: 60_000 }, done);
    socket.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    expect(done).toHaveBeenCalledWith(undefined);
  });
});
