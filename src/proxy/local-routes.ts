/**
 * The proxy's own pages, answered for origin-form requests on the proxy port (a browser
 * fetching the PAC file talks to the proxy as a server, not through it). A route table so the
 * TLS work can add `/.leeway/ca.pem` without touching the pipeline.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { renderPac } from '../pages/pac.js';
import { renderPrivacyPage } from '../pages/privacy.js';
import { pageHeaders } from '../pages/html.js';
import { PRIVACY_PATH } from '../pages/html.js';
import { pageLanguage } from './page.js';
import type { Runtime } from './runtime.js';

export type LocalRoute = (req: IncomingMessage, res: ServerResponse, runtime: Runtime) => void;

export class LocalRoutes {
  readonly #routes = new Map<string, LocalRoute>();

  /** @param proxyAddress the `host:port` browsers should use, when the Host header does not say. */
  constructor(private readonly proxyAddress: () => string) {
    this.register('/proxy.pac', (req, res, runtime) => servePac(req, res, runtime, pacProxyAddress(req.headers.host) ?? this.proxyAddress()));
    this.register(PRIVACY_PATH, (req, res, runtime) => {
      const body = Buffer.from(renderPrivacyPage(runtime.policy, pageLanguage(req)), 'utf8');
      res.writeHead(200, { ...pageHeaders(), 'content-length': String(body.length) });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  }

  register(path: string, route: LocalRoute): void {
    this.#routes.set(path, route);
  }

  /** True when a route answered. `path` (no query) defaults to the origin-form request URL's. */
  handle(req: IncomingMessage, res: ServerResponse, runtime: Runtime, path?: string): boolean {
    const url = path ?? req.url ?? '/';
    const query = url.indexOf('?');
    const route = this.#routes.get(query === -1 ? url : url.slice(0, query));
    if (route === undefined || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    route(req, res, runtime);
    return true;
  }
}

/**
 * The PAC file naming `proxy` (host:port). On the proxy port the browser's Host header names the
 * proxy; on the admin listener it names the admin port, so there the bound proxy address is used.
 */
export function servePac(req: IncomingMessage, res: ServerResponse, runtime: Runtime, proxy: string): void {
  const body = renderPac({ proxy, bypass: runtime.policy.settings.proxy.pacBypass });
  res.writeHead(200, { 'content-type': 'application/x-ns-proxy-autoconfig', 'cache-control': 'max-age=300', 'content-length': String(Buffer.byteLength(body)) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** The Host header the browser used to fetch the PAC file is the address it can reach us at. */
function pacProxyAddress(host: string | undefined): string | undefined {
  if (host === undefined || !/^[A-Za-z0-9.[\]:-]{1,255}$/.test(host)) return undefined;
  return host.includes(':') && !host.endsWith(']') ? host : `${host}:80`;
}
