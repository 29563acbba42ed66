/**
 * What Leeway's own upstream HTTP/1.1 client (forward.ts, origin-pool.ts, response-head.ts)
 * handles that undici used to: framing, interim answers, bad or oversized heads, reuse, and the
 * one retry of a bodiless request whose kept-alive connection the origin had closed. The origin
 * here is a raw TCP server, so each test says byte for byte what the origin sends.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { bytesPerTurn, startFirehose, startOrigin } from '../helpers/origin.js';
import type { Origin } from '../helpers/origin.js';
import { writeTestPolicy } from '../helpers/policy.js';
import type { TestPolicy } from '../helpers/policy.js';
import { rawExchange, startLeeway, statusOf } from '../helpers/proxy.js';
import { OriginPool } from '../../src/proxy/origin-pool.js';
import type { UpstreamConnection } from '../../src/proxy/origin-pool.js';
import { READ_BUFFER } from '../../src/proxy/read-buffer.js';
import type { RunningLeeway } from '../helpers/proxy.js';

/** One request as the raw origin saw it: its head, and its place on its connection. */
interface Seen {
  readonly head: string;
  readonly connection: number;
  /** 1 for the first request on its connection. */
  readonly index: number;
}

interface RawOrigin {
  readonly port: number;
  readonly seen: Seen[];
  connections(): number;
  close(): Promise<void>;
}

/**
 * A raw origin: `answer` is called for each request head (bodies are not expected, except where a
 * test says so) and writes whatever it likes on the socket.
 */
async function startRawOrigin(answer: (socket: net.Socket, seen: Seen) => void): Promise<RawOrigin> {
  const seen: Seen[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    const connection = ++connections;
    let index = 0;
    let buffered = '';
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      for (let end = buffered.indexOf('\r\n\r\n'); end !== -1; end = buffered.indexOf('\r\n\r\n')) {
        const head = buffered.slice(0, end + 4);
        buffered = buffered.slice(end + 4);
        const request = { head, connection, index: ++index };
        seen.push(request);
        answer(socket, request);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

let policy: TestPolicy;
let proxy: RunningLeeway;
let raw: RawOrigin | undefined;

beforeAll(async () => {
  policy = await writeTestPolicy({ proxy: { timeouts: { upstreamMs: 2_000 } } });
  proxy = await startLeeway({ policies: policy.dir });
});

afterEach(async () => {
  await raw?.close();
  raw = undefined;
});

afterAll(async () => {
  await proxy.close();
  await policy.cleanup();
});

/** A request through the proxy on its own client connection, read to the end. */
function through(port: number, path: string, options: { method?: string; extra?: string; body?: string } = {}): Promise<string> {
  const lines = [`${options.method ?? 'GET'} http://origin.test:${port}${path} HTTP/1.1`, `Host: origin.test:${port}`, 'Connection: close'];
  if (options.extra !== undefined) lines.push(options.extra);
  return rawExchange(proxy.port, `${lines.join('\r\n')}\r\n\r\n${options.body ?? ''}`);
}

const bodyOf = (response: string): string => response.slice(response.indexOf('\r\n\r\n') + 4);

/** The text of a chunked body as the client received it, and whether its last chunk came. */
function dechunk(body: string): { text: string; complete: boolean } {
  let text = '';
  let at = 0;
  for (;;) {
    const lineEnd = body.indexOf('\r\n', at);
    if (lineEnd === -1) return { text, complete: false };
    const size = parseInt(body.slice(at, lineEnd), 16);
    if (Number.isNaN(size)) return { text, complete: false };
    if (size === 0) return { text, complete: body.slice(lineEnd).startsWith('\r\n\r\n') };
    text += body.slice(lineEnd + 2, lineEnd + 2 + size);
    at = lineEnd + 2 + size + 2;
  }
}

describe('upstream client: reuse and retry', () => {
  it('retries once, on a new connection, a bodiless request whose kept-alive connection the origin closed', async () => {
    raw = await startRawOrigin((socket, seen) => {
      // The origin gives up on its idle connection just as the next request arrives.
      if (seen.index > 1) return void socket.destroy();
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    const first = await through(raw.port, '/one');
    expect(statusOf(first)).toBe(200);
    const second = await through(raw.port, '/two');
    expect(statusOf(second)).toBe(200);
    expect(bodyOf(second)).toBe('ok');
    // /two went first to the reused connection (which the origin closed), then to a new one.
    expect(raw.seen.map((s) => `${s.head.split(' ')[1] ?? ''} ${s.connection}.${s.index}`)).toEqual(['/one 1.1', '/two 1.2', '/two 2.1']);
  });

  it('closes an idle origin connection after 4 s, before the origin would (Node servers: 5 s)', async () => {
    let closedByProxyAt = 0;
    raw = await startRawOrigin((socket) => {
      socket.once('end', () => (closedByProxyAt = Date.now()));
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    expect(statusOf(await through(raw.port, '/idle'))).toBe(200);
    const answeredAt = Date.now();
    for (let i = 0; i < 60 && closedByProxyAt === 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(closedByProxyAt).toBeGreaterThan(0);
    expect(closedByProxyAt - answeredAt).toBeGreaterThanOrEqual(3_500);
    expect(closedByProxyAt - answeredAt).toBeLessThan(5_000);
  }, 10_000);

  it('does not retry a request with a body: the client gets a 502', async () => {
    raw = await startRawOrigin((socket, seen) => {
      if (seen.index > 1) return void socket.destroy();
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    expect(statusOf(await through(raw.port, '/warm'))).toBe(200);
    const post = await through(raw.port, '/post', { method: 'POST', extra: 'Content-Length: 3', body: 'x=1' });
    expect(statusOf(post)).toBe(502);
    expect(post).toMatch(/X-Leeway-Reason: LEEWAY_ERR_UPSTREAM_RESET/i);
    expect(raw.connections()).toBe(1);
  });

  it('does not retry a non-idempotent request even without a body (RFC 9110 §9.2.2)', async () => {
    raw = await startRawOrigin((socket, seen) => {
      if (seen.index > 1) return void socket.destroy();
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    expect(statusOf(await through(raw.port, '/warm'))).toBe(200);
    const post = await through(raw.port, '/post', { method: 'POST', extra: 'Content-Length: 0' });
    expect(statusOf(post)).toBe(502);
    expect(raw.connections()).toBe(1);
  });

  it('does not reuse a connection after a response that ran on beyond its Content-Length, and cuts the extra bytes', async () => {
    raw = await startRawOrigin((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE');
    });
    const first = await through(raw.port, '/a');
    expect(bodyOf(first)).toBe('ok');
    expect(statusOf(await through(raw.port, '/b'))).toBe(200);
    expect(raw.connections()).toBe(2);
  });
});

describe('upstream client: framing', () => {
  it('decodes a chunked response (extensions, trailers, split writes) and keeps the connection', async () => {
    raw = await startRawOrigin((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;ext=1\r\nhel');
      setTimeout(() => socket.write('lo\r\n6\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n'), 20);
    });
    const first = await through(raw.port, '/chunked');
    expect(statusOf(first)).toBe(200);
    // Framed again by Node for the client: the decoded text is there whole, the extension and trailer are not.
    expect(first).toMatch(/transfer-encoding: chunked/i);
    expect(dechunk(bodyOf(first))).toEqual({ text: 'hello world', complete: true });
    expect(first).not.toContain('ext=1');
    expect(first).not.toContain('X-Sum: 11');
    expect(statusOf(await through(raw.port, '/again'))).toBe(200);
    expect(raw.connections()).toBe(1);
  });

  it('skips an interim 103 Early Hints and forwards the final answer', async () => {
    raw = await startRawOrigin((socket) => {
      socket.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n');
      setTimeout(() => socket.write('HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone'), 10);
    });
    const response = await through(raw.port, '/hints');
    expect(statusOf(response)).toBe(201);
    expect(bodyOf(response)).toBe('done');
  });

  it('reads no body after a HEAD response whatever its Content-Length, and reuses the connection', async () => {
    raw = await startRawOrigin((socket, seen) => {
      if (seen.head.startsWith('HEAD')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n');
      else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nget');
    });
    const head = await through(raw.port, '/h', { method: 'HEAD' });
    expect(statusOf(head)).toBe(200);
    expect(head).toMatch(/content-length: 5000/i);
    expect(bodyOf(head)).toBe('');
    expect(bodyOf(await through(raw.port, '/g'))).toBe('get');
    expect(raw.connections()).toBe(1);
  });

  it('forwards a body delimited by the close of the connection whole, then opens a new connection', async () => {
    raw = await startRawOrigin((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ');
      setTimeout(() => socket.end('the close'), 10);
    });
    const response = await through(raw.port, '/close');
    expect(statusOf(response)).toBe(200);
    expect(response).toContain('until ');
    expect(response).toContain('the close');
    expect(statusOf(await through(raw.port, '/next'))).toBe(200);
    expect(raw.connections()).toBe(2);
  });
});

describe('upstream client: bad answers', () => {
  const cases: { name: string; answer: string; why: RegExp }[] = [
    { name: 'a header name with a space', answer: 'HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 0\r\n\r\n', why: /header name is not a token/ },
    { name: 'a status line that is not HTTP', answer: 'ICY 200 OK\r\n\r\n', why: /not HTTP\/1\.x/ },
    { name: 'conflicting lengths', answer: 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', why: /Content-Length values differ/ },
    { name: 'a head larger than 64 KiB', answer: `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`, why: /head is larger than 64 KiB/ },
  ];
  for (const c of cases) {
    it(`answers 502 naming the problem for ${c.name}`, async () => {
      raw = await startRawOrigin((socket) => {
        socket.write(c.answer);
      });
      const response = await through(raw.port, '/bad');
      expect(statusOf(response)).toBe(502);
      expect(response).toMatch(/X-Leeway-Reason: LEEWAY_ERR_UPSTREAM\r\n/i);
      expect(bodyOf(response)).toMatch(c.why);
    });
  }

  it('cuts the client connection when a chunked body breaks after the head was passed on', async () => {
    raw = await startRawOrigin((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n');
      setTimeout(() => socket.write('zz\r\n'), 20);
    });
    const response = await through(raw.port, '/broken');
    expect(statusOf(response)).toBe(200);
    expect(dechunk(bodyOf(response)).complete).toBe(false);
  });
});

describe('upstream client: request bodies', () => {
  let origin: Origin;
  beforeAll(async () => {
    origin = await startOrigin();
  });
  afterAll(async () => {
    await origin.close();
  });

  it('sends a chunked upload on chunked, whole', async () => {
    const response = await rawExchange(
      proxy.port,
      `POST http://origin.test:${origin.port}/upload HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`,
    );
    expect(statusOf(response)).toBe(200);
    expect(JSON.parse(dechunk(bodyOf(response)).text) as { bytes: number }).toMatchObject({ bytes: 11 });
    expect(origin.received.at(-1)?.headers['transfer-encoding']).toBe('chunked');
    expect(origin.received.at(-1)?.headers['content-length']).toBeUndefined();
  });

  it('sends a Content-Length upload with its length', async () => {
    const response = await rawExchange(proxy.port, `PUT http://origin.test:${origin.port}/upload HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\nContent-Length: 4\r\n\r\nabcd`);
    expect(statusOf(response)).toBe(200);
    expect(bodyOf(response)).toContain('"bytes":4');
    expect(origin.received.at(-1)?.headers['content-length']).toBe('4');
  });
});

describe('upstream client: fairness', () => {
  it('reads a fast origin at most about READ_BUFFER per turn of the event loop', async () => {
    // An origin that streams as fast as it can once asked: without the per-turn budget libuv
    // reads the socket again and again within one turn (up to 32 reads of 1 MiB), so one
    // download holds the loop while every other connection waits.
    const firehose = await startFirehose({ startOnData: true });
    const pool = new OriginPool({ secure: false, address: '127.0.0.1', port: firehose.port, host: '127.0.0.1', secureContext: undefined, connectMs: 5_000 });
    try {
      const connection = await new Promise<UpstreamConnection>((resolve, reject) => pool.acquire((c) => (c instanceof Error ? reject(c) : resolve(c))));
      let read = 0;
      connection.owner = {
        onData: (chunk) => {
          read += chunk.length;
        },
        onClose: () => undefined,
      };
      connection.socket.write('go');
      const figures = await bytesPerTurn(() => read, 256 * 1024 * 1024);
      expect(figures.read).toBeGreaterThan(16 * 1024 * 1024);
      expect(figures.turns).toBeGreaterThan(16);
      expect(figures.most).toBeGreaterThan(0);
      // The budget, plus the read that crossed it.
      expect(figures.most).toBeLessThanOrEqual(2 * READ_BUFFER.length);
    } finally {
      pool.close(true);
      await firehose.close();
    }
  });
});
