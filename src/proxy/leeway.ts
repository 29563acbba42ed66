/**
 * One Leeway instance: the policy in force, the pipeline, the proxy and admin listeners, and
 * their lifecycle (listen, reload keeping the last good policy, drain and close).
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { LeewayError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { loadPolicy, formatProblem } from '../policy/load.js';
import type { PolicyProblem } from '../policy/load.js';
import type { CompiledPolicy } from '../policy/types.js';
import { Pseudonymizer } from '../identity/pseudonym.js';
import { ContinueTokens } from '../pages/continue-token.js';
import { AcknowledgementStore } from '../pages/acknowledgements.js';
import { AdminServer } from '../admin/server.js';
import type { AdminHandler } from '../admin/server.js';
import type { Accounting } from './account.js';
import { noopAccounting } from './account.js';
import type { Interceptor, InnerHandlers } from './interceptor.js';
import { buildRuntime } from './runtime.js';
import type { Runtime } from './runtime.js';
import { Identifier } from './identify.js';
import type { Identity } from './identify.js';
import { Egress } from './egress.js';
import { createOriginAgents } from './forward.js';
import { LocalRoutes, servePac } from './local-routes.js';
import type { LocalRoute } from './local-routes.js';
import { Pipeline } from './pipeline.js';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface LeewayOptions {
  /** A policy folder to load (and reload). One of `policies` or `policy` is required. */
  readonly policies?: string;
  /** An already compiled policy (embedding, tests); `reload()` then needs `policies`. */
  readonly policy?: CompiledPolicy;
  /** Proxy listener for `listen()`. Default 127.0.0.1:3128; port 0 picks a free port. */
  readonly listen?: string | HostPort;
  /** Admin listener (health, readiness, metrics). Default 127.0.0.1:9464; false for none. */
  readonly admin?: string | HostPort | false;
  readonly logger?: Logger;
  /** TLS interception (issue 4); without it, CONNECTs that need a page are refused with 403. */
  readonly interceptor?: Interceptor;
  /** Usage accounting (issue 5); default: no-op, every quota reads 0 minutes used. */
  readonly accounting?: Accounting;
  /** Extra admin routes, e.g. `{ '/metrics': handler }`. */
  readonly adminRoutes?: Readonly<Record<string, AdminHandler>>;
  /** Milliseconds clock; injectable for tests. */
  readonly clock?: () => number;
}

export interface LeewayAddresses {
  readonly proxy: AddressInfo;
  readonly admin: AddressInfo | undefined;
}

export type ReloadResult = { readonly ok: true; readonly policy: CompiledPolicy; readonly warnings: readonly PolicyProblem[] } | { readonly ok: false; readonly problems: readonly PolicyProblem[] };

export interface LeewayHandlers {
  readonly request: (req: IncomingMessage, res: ServerResponse) => void;
  readonly connect: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  readonly upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

export interface Leeway {
  /** Attach to your own http.Server: `server.on('request', handlers.request)` and so on. */
  readonly handlers: LeewayHandlers;
  /** Attach all three handlers to a server, and tell the loop check where it listens. */
  attach(server: http.Server): void;
  /** Start the proxy (and admin) listeners; resolves with the bound addresses. */
  listen(): Promise<LeewayAddresses>;
  /** Stop accepting, let in-flight requests finish up to `drainMs` (default settings.proxy.timeouts.drainMs), then close everything. */
  close(drainMs?: number): Promise<void>;
  /** Load the policy folder again; on failure the policy in force stays and the problems are returned. */
  reload(): Promise<ReloadResult>;
  readonly policy: CompiledPolicy;
  readonly addresses: LeewayAddresses | undefined;
  readonly admin: AdminServer;
  /** The proxy port's own pages (PAC, privacy); add routes such as /.leeway/ca.pem here. */
  registerLocalRoute(path: string, route: LocalRoute): void;
  /** Run the pipeline for requests decrypted inside a CONNECT (what an Interceptor receives). */
  innerHandlers(identity: Identity, host: string, port: number): InnerHandlers;
}

export async function createLeeway(options: LeewayOptions): Promise<Leeway> {
  const logger = options.logger ?? silentLogger();
  const clock = options.clock ?? Date.now;
  const listenAt = parseHostPort(options.listen ?? '127.0.0.1:3128', 'listen');
  const adminAt = options.admin === false ? undefined : parseHostPort(options.admin ?? '127.0.0.1:9464', 'admin');

  let policy: CompiledPolicy;
  if (options.policy !== undefined) policy = options.policy;
  else if (options.policies !== undefined) {
    const loaded = await loadPolicy(options.policies);
    if (!loaded.ok) {
      throw new LeewayError('LEEWAY_ERR_POLICY_INVALID', `policy in ${options.policies} is invalid:\n${loaded.errors.map(formatProblem).join('\n')}`, { problems: loaded.errors.length });
    }
    for (const warning of loaded.warnings) logger.warn({ problem: formatProblem(warning) }, 'policy warning');
    policy = loaded.policy;
  } else {
    throw new LeewayError('LEEWAY_ERR_CONFIG', 'createLeeway needs `policies` (a folder) or `policy` (a compiled policy)');
  }
  let runtime: Runtime = await buildRuntime(policy);

  const pseudonymizer = new Pseudonymizer({ timeZone: policy.settings.timeZone, clock });
  const egress = new Egress();
  const agents = createOriginAgents();
  const admin = new AdminServer(logger);
  for (const [path, handler] of Object.entries(options.adminRoutes ?? {})) admin.register(path, handler);
  let addresses: LeewayAddresses | undefined;
  const proxyAddress = (): string => (addresses === undefined ? `${listenAt.host}:${listenAt.port}` : hostPortText(addresses.proxy));
  const localRoutes = new LocalRoutes(proxyAddress);
  // PRODUCT.md lists /proxy.pac on the admin listener too (where WPAD setups often point).
  admin.register('/proxy.pac', (req, res) => servePac(req, res, runtime, proxyAddress()));
  const pipeline = new Pipeline({
    runtime: () => runtime,
    identifier: new Identifier(pseudonymizer),
    egress,
    agents,
    accounting: options.accounting ?? noopAccounting,
    interceptor: options.interceptor,
    tokens: new ContinueTokens({ clock }),
    acknowledgements: new AcknowledgementStore(),
    localRoutes,
    logger,
    clock,
  });
  const handlers: LeewayHandlers = { request: pipeline.request, connect: pipeline.connect, upgrade: pipeline.upgrade };

  let proxyServer: http.Server | undefined;
  const attachedServers: http.Server[] = [];
  const refreshListeners = (): void => {
    const bound: { address: string; port: number }[] = [];
    for (const server of attachedServers) {
      const address = server.address();
      if (address !== null && typeof address === 'object') bound.push({ address: address.address, port: address.port });
    }
    // The admin listener is ours too: forwarding to it would expose /metrics to every proxy client.
    const adminAddress = addresses?.admin;
    if (adminAddress !== undefined) bound.push({ address: adminAddress.address, port: adminAddress.port });
    egress.setListeners(bound);
  };

  const attach = (server: http.Server): void => {
    const accounting = options.accounting;
    if (accounting?.connection !== undefined) server.on('connection', (socket: Duplex) => accounting.connection?.(socket, 'http'));
    server.on('request', handlers.request);
    server.on('connect', handlers.connect);
    server.on('upgrade', handlers.upgrade);
    attachedServers.push(server);
    if (server.listening) refreshListeners();
    server.on('listening', refreshListeners);
  };

  const leeway: Leeway = {
    handlers,
    attach,
    get policy() {
      return runtime.policy;
    },
    get addresses() {
      return addresses;
    },
    admin,
    registerLocalRoute: (path, route) => localRoutes.register(path, route),
    innerHandlers: (identity, host, port) => pipeline.inner(identity, host, port),

    async listen() {
      if (proxyServer !== undefined) throw new LeewayError('LEEWAY_ERR_CONFIG', 'listen() was already called');
      const timeouts = runtime.policy.settings.proxy.timeouts;
      const server = http.createServer({
        headersTimeout: timeouts.headersMs,
        // Node checks headersTimeout only this often (default 30 s): check often enough to enforce it.
        connectionsCheckingInterval: Math.max(100, Math.min(Math.floor(timeouts.headersMs / 4), 5_000)),
        // Long uploads are legitimate; a stalled one is caught by the idle timeout below.
        requestTimeout: 0,
        keepAliveTimeout: Math.min(timeouts.idleMs, 60_000),
        noDelay: true,
      });
      // Inactive sockets (a client stalled mid-upload or not reading) are closed after idleMs.
      server.timeout = timeouts.idleMs;
      server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
        // Malformed or too slow requests get a status and a closed socket; nothing else in flight is touched.
        const status = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
        if (socket.writable && error.code !== 'ECONNRESET') socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        else socket.destroy();
      });
      proxyServer = server;
      attach(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(listenAt.port, listenAt.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const adminAddress = adminAt === undefined ? undefined : await admin.listen(adminAt.host, adminAt.port);
      addresses = { proxy: server.address() as AddressInfo, admin: adminAddress };
      refreshListeners();
      refreshListeners();
      admin.setReady(true);
      logger.info({ proxy: hostPortText(addresses.proxy), admin: adminAddress === undefined ? undefined : hostPortText(adminAddress), policyHash: runtime.policy.hash }, 'leeway listening');
      return addresses;
    },

    async close(drainMs?: number) {
      admin.setReady(false);
      const grace = drainMs ?? runtime.policy.settings.proxy.timeouts.drainMs;
      const server = proxyServer;
      if (server !== undefined) {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Idle keep-alive connections would hold close() open; in-flight requests finish first.
        server.closeIdleConnections();
        const idleSweep = setInterval(() => server.closeIdleConnections(), 100);
        const waitTunnels = async (): Promise<void> => {
          while (pipeline.detached.size > 0) await new Promise((r) => setTimeout(r, 50));
        };
        let timer: NodeJS.Timeout | undefined;
        const graceOver = new Promise<'timeout'>((resolve) => {
          timer = setTimeout(() => resolve('timeout'), grace);
        });
        const result = await Promise.race([Promise.all([closed, waitTunnels()]).then(() => 'drained' as const), graceOver]);
        clearInterval(idleSweep);
        clearTimeout(timer);
        if (result === 'timeout') {
          logger.warn({ graceMs: grace, tunnels: pipeline.detached.size }, 'drain grace period over; closing the remaining connections');
          server.closeAllConnections();
          for (const socket of pipeline.detached) socket.destroy();
          await closed;
        }
        proxyServer = undefined;
      }
      agents.destroy();
      await admin.close();
      logger.info('leeway stopped');
    },

    async reload() {
      if (options.policies === undefined) {
        return { ok: false, problems: [{ file: '(embedded)', line: 0, col: 0, message: 'reload needs the `policies` option' }] };
      }
      const loaded = await loadPolicy(options.policies);
      if (!loaded.ok) {
        for (const problem of loaded.errors) logger.error({ problem: formatProblem(problem) }, 'policy reload failed; the previous policy stays in force');
        return { ok: false, problems: loaded.errors };
      }
      let next: Runtime;
      try {
        next = await buildRuntime(loaded.policy);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        logger.error({ err: message }, 'policy reload failed; the previous policy stays in force');
        return { ok: false, problems: [{ file: options.policies, line: 0, col: 0, message }] };
      }
      for (const warning of loaded.warnings) logger.warn({ problem: formatProblem(warning) }, 'policy warning');
      runtime = next;
      logger.info({ policyHash: next.policy.hash, rules: next.policy.stats.rules }, 'policy reloaded');
      return { ok: true, policy: next.policy, warnings: loaded.warnings };
    },
  };
  return leeway;
}

export function parseHostPort(value: string | HostPort, what: string): HostPort {
  if (typeof value !== 'string') return value;
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || port > 65535) throw new LeewayError('LEEWAY_ERR_CONFIG', `--${what} must be HOST:PORT (got "${value}")`);
  return { host: match[1] ?? (match[2] === '' ? '127.0.0.1' : (match[2] as string)), port };
}

function hostPortText(address: AddressInfo): string {
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}
