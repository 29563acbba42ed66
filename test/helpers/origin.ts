/**
 * A real origin server for integration tests, on 127.0.0.1 port 0. Its default routes cover
 * what proxy tests need; pass a handler to answer differently. It records the headers of every
 * request and counts TCP connections (for keep-alive assertions).
 */
import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';

export interface Origin {
  readonly server: http.Server;
  readonly port: number;
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** Headers (and raw header names) of each request received, in order. */
  readonly received: { method: string; url: string; headers: IncomingHttpHeaders; rawHeaders: string[] }[];
  /** TCP connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/**
 * Default routes:
 * - `/hello` → 200 "hello from origin"
 * - `/headers` → 200 JSON of the request headers
 * - `/bytes?n=N` → N bytes (streamed, backpressure respected)
 * - `/upload` → counts the request body; answers `{"bytes":N,"firstByteAt":ms}`
 * - `/silent` → never answers
 * - `/reset` → sends headers and part of a body, then destroys the connection
 * - anything else → 200 "path: <path>"
 */
export const defaultOriginHandler: RequestListener = (req: IncomingMessage, res: ServerResponse) => {
  const url = new URL(req.url ?? '/', 'http://origin');
  switch (url.pathname) {
    case '/hello':
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '17' });
      res.end('hello from origin');
      return;
    case '/headers':
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ headers: req.headers, rawHeaders: req.rawHeaders }));
      return;
    case '/bytes': {
      const total = Number(url.searchParams.get('n') ?? '1024');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
      const chunk = Buffer.alloc(Math.min(total, 64 * 1024), 120);
      let sent = 0;
      const pump = (): void => {
        while (sent < total) {
          const size = Math.min(chunk.length, total - sent);
          sent += size;
          if (!res.write(size === chunk.length ? chunk : chunk.subarray(0, size))) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    case '/upload': {
      let bytes = 0;
      let firstByteAt: number | undefined;
      req.on('data', (c: Buffer) => {
        firstByteAt ??= Date.now();
        bytes += c.length;
      });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ bytes, firstByteAt }));
      });
      return;
    }
    case '/silent':
      return;
    case '/reset':
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000000' });
      res.write('partial');
      setTimeout(() => req.socket.destroy(), 20);
      return;
    default:
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`path: ${req.url}`);
  }
};

export async function startOrigin(handler: RequestListener = defaultOriginHandler): Promise<Origin> {
  const received: Origin['received'] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = http.createServer((req, res) => {
    received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders });
    handler(req, res);
  });
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    received,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * A TCP echo origin for tunnels: echoes what it reads and, once the client half-closes, sends
 * "bye" and closes its side (so a test sees both directions end on their own).
 */
export async function startEchoServer(): Promise<{ readonly server: net.Server; readonly port: number }> {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('data', (chunk) => socket.write(chunk));
    socket.on('end', () => socket.end('bye'));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

export interface Firehose {
  readonly port: number;
  /** Bytes handed to the kernel so far, over every connection. */
  written(): number;
  /** Closes the server and every connection. */
  close(): Promise<void>;
}

/**
 * A TCP origin that writes 256 KiB chunks as fast as the peer takes them, forever: at once on
 * connect, or (with `startOnData`) once the peer said something, so bytes cannot arrive before
 * the test is listening.
 */
export async function startFirehose(options: { readonly startOnData?: boolean } = {}): Promise<Firehose> {
  let written = 0;
  const sockets = new Set<net.Socket>();
  const chunk = Buffer.alloc(256 * 1024, 9);
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const pump = (): void => {
      while (!socket.destroyed) {
        written += chunk.length;
        if (!socket.write(chunk)) return void socket.once('drain', pump);
      }
    };
    if (options.startOnData === true) socket.once('data', pump);
    else pump();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    written: () => written,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** What bytesPerTurn() saw: the total, the turns sampled, and the most read between two of them. */
export interface TurnFigures {
  readonly read: number;
  readonly turns: number;
  readonly most: number;
}

/**
 * Samples `read()` (a running byte count) at every turn of the event loop, from one check phase
 * to the next, until it reaches `maxBytes` or `maxMs` passed: how many bytes one turn let through.
 */
export function bytesPerTurn(read: () => number, maxBytes: number, maxMs = 5_000): Promise<TurnFigures> {
  return new Promise((resolve) => {
    let last = read();
    let turns = 0;
    let most = 0;
    const started = Date.now();
    const turn = (): void => {
      const now = read();
      most = Math.max(most, now - last);
      last = now;
      turns += 1;
      if (now < maxBytes && Date.now() - started < maxMs) setImmediate(turn);
      else resolve({ read: now, turns, most });
    };
    setImmediate(turn);
  });
}
