/**
 * The admin listener (PRODUCT.md): /healthz, /readyz, and a route table that other parts extend
 * (/metrics and the / status page are registered by the metrics and status work). Kept apart
 * from the proxy port so that scraping and probes never compete with, or pass through, the proxy.
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log/logger.js';

export type AdminHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export class AdminServer {
  readonly #routes = new Map<string, AdminHandler>();
  #ready = false;
  #server: http.Server | undefined;

  constructor(private readonly logger: Logger) {
    this.register('/healthz', (_req, res) => text(res, 200, 'ok\n'));
    this.register('/readyz', (_req, res) => (this.#ready ? text(res, 200, 'ready\n') : text(res, 503, 'not ready\n')));
  }

  /** Add or replace a route (exact path, query ignored). */
  register(path: string, handler: AdminHandler): void {
    if (!path.startsWith('/')) throw new TypeError(`admin route must start with "/": ${path}`);
    this.#routes.set(path, handler);
  }

  get routes(): readonly string[] {
    return [...this.#routes.keys()];
  }

  /** Ready once a policy is loaded and the proxy listens; false again while draining. */
  setReady(ready: boolean): void {
    this.#ready = ready;
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** The request listener, for embedding on a server of one's own. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const handler = this.#routes.get(query === -1 ? url : url.slice(0, query));
    if (handler === undefined) return text(res, 404, 'not found\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, 'method not allowed\n');
    try {
      const result = handler(req, res);
      if (result instanceof Promise) result.catch((error: unknown) => this.#fail(res, error));
    } catch (error) {
      this.#fail(res, error);
    }
  };

  listen(host: string, port: number): Promise<AddressInfo> {
    const server = http.createServer(this.handle);
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve(server.address() as AddressInfo);
      });
    });
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  #fail(res: ServerResponse, error: unknown): void {
    this.logger.error({ err: error }, 'admin route failed');
    if (!res.headersSent) text(res, 500, 'internal error\n');
    else res.destroy();
  }
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
