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
