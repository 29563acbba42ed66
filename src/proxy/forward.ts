/**
 * The forward action: one request to the origin over a keep-alive pool, bodies streamed both
 * ways with backpressure, headers rewritten in one pass. The upstream client is undici's Pool
 * (one per origin) driven through its low-level dispatch handler: measured on the 1 KiB load,
 * node:http's ClientRequest/IncomingMessage/Agent machinery cost about a third more CPU per
 * request, and http-proxy more still (FIELD-NOTES). node:http Agents stay for WebSockets.
 */
import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import { Pool, buildConnector } from 'undici';
import type { Dispatcher } from 'undici';
import { LeewayError } from '../errors.js';
import { announcesBody, forwardHeaders } from './headers.js';
import type { Destination } from './egress.js';
import { upstreamError } from './upstream-errors.js';

export interface OriginAgents {
  readonly http: http.Agent;
  /** One https Agent per upstream trust (system roots, or roots plus the extra bundle). */
  https(secureContext: SecureContext | undefined): https.Agent;
  /** The keep-alive pool toward one origin (scheme, host as named, port, resolved address, trust). */
  pool(target: ForwardTarget, secureContext: SecureContext | undefined, connectMs: number): OriginPool;
  destroy(): void;
}

// Below Node's default server keepAliveTimeout (5 s) so we drop an idle socket before the origin does.
const ORIGIN_IDLE_MS = 4_000;
// Response bytes allowed to wait for a slow client before the origin is paused.
const PENDING_LIMIT = 256 * 1024;
// Pools kept for origins seen recently; the oldest is closed beyond this (a pool holds no socket once idle).
const MAX_POOLS = 1_024;

export function createOriginAgents(): OriginAgents {
  const options = { keepAlive: true, timeout: ORIGIN_IDLE_MS, maxFreeSockets: 256, scheduling: 'lifo' as const };
  const httpAgent = new http.Agent(options);
  const defaultHttps = new https.Agent(options);
  const byContext = new WeakMap<SecureContext, https.Agent>();
  const all: https.Agent[] = [defaultHttps];
  const pools = new Map<string, OriginPool>();
  // Pools are per trust too: a reload that changes the extra CA bundle gets fresh connections.
  const contextIds = new WeakMap<SecureContext, number>();
  let nextContextId = 1;
  return {
    http: httpAgent,
    https(secureContext) {
      if (secureContext === undefined) return defaultHttps;
      let agent = byContext.get(secureContext);
      if (agent === undefined) {
        agent = new https.Agent({ ...options, secureContext });
        byContext.set(secureContext, agent);
        all.push(agent);
      }
      return agent;
    },
    pool(target, secureContext, connectMs) {
      const secure = target.scheme === 'https';
      let contextId = 0;
      if (secure && secureContext !== undefined) {
        contextId = contextIds.get(secureContext) ?? 0;
        if (contextId === 0) contextIds.set(secureContext, (contextId = nextContextId++));
      }
      // The host is part of the key: undici takes the TLS server name from the Host header and
      // would reconnect whenever it changed on a shared https connection.
      const key = `${target.scheme} ${target.host} ${target.port} ${target.destination.address} ${contextId}`;
      let pool = pools.get(key);
      if (pool === undefined) {
        const address = target.destination.family === 6 ? `[${target.destination.address}]` : target.destination.address;
        pool = new OriginPool(`${target.scheme}://${address}:${target.port}`, secure ? secureContext : undefined, connectMs);
        if (pools.size >= MAX_POOLS) {
          const oldest = pools.keys().next().value as string;
          pools.get(oldest)?.dropPrewarmed();
          void pools.get(oldest)?.dispatcher.close().catch(() => undefined);
          pools.delete(oldest);
        }
        pools.set(key, pool);
      }
      return pool;
    },
    destroy() {
      httpAgent.destroy();
      for (const agent of all) agent.destroy();
      for (const pool of pools.values()) {
        pool.dropPrewarmed();
        void pool.dispatcher.destroy().catch(() => undefined);
      }
      pools.clear();
    },
  };
}

/**
 * An undici Pool toward one origin, and how many exchanges wait for a connection in it.
 * undici answers an aborted in-flight request (a client gone mid-upload or mid-download) by
 * closing that socket and opening a new one for the dead request, which then idles in the pool:
 * the connector refuses to connect when no exchange is waiting, which ends that quietly.
 *
 * prewarm() opens one connection before any request (issue 4: an intercepted new host's origin
 * handshake overlaps the client's). undici has no call that opens a connection without a
 * request, so the socket is opened with the very connector undici uses (same verification and
 * trust), and the pool's first connect adopts it (or waits for it while it is still connecting).
 */
export class OriginPool {
  readonly dispatcher: Pool;
  /** Exchanges dispatched and not yet on a socket (nor failed). */
  waiting = 0;
  /** Connections opened by prewarm() (counted for tests and diagnostics). */
  prewarmed = 0;
  readonly #connectTo: buildConnector.connector;
  readonly #url: URL;
  #warm: Prewarmed | undefined;

  constructor(origin: string, secureContext: SecureContext | undefined, connectMs: number) {
    // Certificates are always verified (rejectUnauthorized stays true); secureContext adds the extra roots.
    const connectTo = buildConnector(secureContext === undefined ? { timeout: connectMs } : { timeout: connectMs, secureContext });
    this.#connectTo = connectTo;
    this.#url = new URL(origin);
    this.dispatcher = new Pool(origin, {
      pipelining: 1,
      keepAliveTimeout: ORIGIN_IDLE_MS,
      keepAliveMaxTimeout: ORIGIN_IDLE_MS,
      // headersTimeout is set on each dispatch; a body may take as long as it takes (as before).
      bodyTimeout: 0,
      connect: (options, callback) => {
        if (this.waiting === 0) {
          callback(Object.assign(new Error('no request is waiting for this connection'), { code: 'LEEWAY_NO_WAITER' }), null);
          return;
        }
        const warm = this.#warm;
        // Adopted only for the same TLS server name (undici passes '' or null for an IP literal).
        if (warm !== undefined && warm.servername === (options.servername ?? '')) {
          if (warm.socket === undefined) {
            warm.waiter = callback;
            return;
          }
          this.#takeWarm(warm);
          const socket = warm.socket;
          if (!socket.destroyed) {
            // Never synchronously: undici ignores a resume from inside its own connect call.
            process.nextTick(() => callback(null, socket));
            return;
          }
        }
        connectTo(options, callback);
      },
    });
  }

  /** Opens one connection for a first request to come, unless one is open, opening or idle here. */
  prewarm(host: string): void {
    if (this.#url.protocol !== 'https:' || this.#warm !== undefined) return;
    const stats = this.dispatcher.stats;
    if (stats.connected > 0 || stats.pending > 0 || stats.running > 0) return;
    // As undici computes it from the Host header: the name, or '' for an IP literal.
    const servername = isIP(host) === 0 ? host.toLowerCase() : '';
    const warm: Prewarmed = { servername, socket: undefined, waiter: undefined, timer: undefined };
    this.#warm = warm;
    this.prewarmed++;
    const url = this.#url;
    this.#connectTo(
      { hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname, host: url.host, protocol: url.protocol, port: url.port, servername, localAddress: null, httpSocket: undefined },
      (error, socket) => {
        const waiter = warm.waiter;
        if (waiter !== undefined) {
          // A request came while this connection was being opened: it is the request's now.
          this.#takeWarm(warm);
          if (error === null) waiter(null, socket);
          else waiter(error, null);
          return;
        }
        if (this.#warm !== warm || error !== null) {
          if (this.#warm === warm) this.#warm = undefined;
          socket?.destroy();
          return;
        }
        const opened = socket as Socket;
        warm.socket = opened;
        // An idle socket must not take the process down on a reset; undici listens once it adopts it.
        opened.on('error', ignore);
        opened.once('close', () => {
          if (this.#warm === warm) this.#takeWarm(warm);
        });
        // Unused, it is closed like any idle origin connection.
        warm.timer = setTimeout(() => {
          if (this.#warm !== warm) return;
          this.#takeWarm(warm);
          opened.destroy();
        }, ORIGIN_IDLE_MS);
        warm.timer.unref();
      },
    );
  }

  /** Closes a prewarmed connection nobody took (pool evicted or proxy closing). */
  dropPrewarmed(): void {
    const warm = this.#warm;
    if (warm === undefined) return;
    this.#takeWarm(warm);
    warm.socket?.destroy();
  }

  #takeWarm(warm: Prewarmed): void {
    if (this.#warm === warm) this.#warm = undefined;
    if (warm.timer !== undefined) clearTimeout(warm.timer);
    warm.socket?.off('error', ignore);
  }
}

interface Prewarmed {
  readonly servername: string;
  /** Undefined while connecting. */
  socket: Socket | undefined;
  /** undici's connect callback when a request came before the connection was open. */
  waiter: buildConnector.Callback | undefined;
  timer: NodeJS.Timeout | undefined;
}

function ignore(): void {}

export interface ForwardTarget {
  readonly scheme: 'http' | 'https';
  /** Host name as the client named it (Host header, TLS servername). */
  readonly host: string;
  readonly port: number;
  /** Origin-form path with query. */
  readonly path: string;
  readonly destination: Destination;
}

export interface ForwardOutcome {
  readonly status: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Set when the origin could not be reached or failed; the caller answers with a page if nothing was sent yet. */
  readonly error: LeewayError | undefined;
  /** True when headers were already sent when the error happened (the client connection was closed). */
  readonly aborted: boolean;
}

export interface ForwardOptions {
  readonly agents: OriginAgents;
  readonly secureContext: SecureContext | undefined;
  /** Connect, and then response headers, must each come within this. */
  readonly upstreamMs: number;
  /** A header to drop (the trusted identity header). */
  readonly dropHeader: string | undefined;
}

export function forward(req: IncomingMessage, res: ServerResponse, target: ForwardTarget, options: ForwardOptions, done: (outcome: ForwardOutcome) => void): void {
  const raw = req.rawHeaders;
  // undici frames the body itself (chunked when no Content-Length), so Transfer-Encoding is not passed on.
  const headers = forwardHeaders(raw, { keepTransferEncoding: false, dropExpect: true, drop: options.dropHeader, host: hostHeader(target) });
  const pool = options.agents.pool(target, options.secureContext, options.upstreamMs);
  const exchange = new Exchange(req, res, target.host, pool, done);
  pool.waiting++;
  pool.dispatcher.dispatch(
    {
      path: target.path,
      method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
      headers,
      body: announcesBody(raw) ? req : null,
      headersTimeout: options.upstreamMs,
      // A proxy passes requests on as they come; retrying is the client's choice.
      idempotent: false,
    },
    exchange,
  );
}

/**
 * One request/response through the pool, as undici's dispatch handler (the callback form that
 * undici calls natively, without its header-object wrapper). A class rather than closures: one
 * allocation per request.
 */
class Exchange implements Dispatcher.DispatchHandler {
  #abort: ((error?: Error) => void) | undefined;
  #resume: (() => void) | undefined;
  #status = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #finished = false;
  #waiting = true;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly host: string,
    private readonly pool: OriginPool,
    private readonly done: (outcome: ForwardOutcome) => void,
  ) {
    res.on('close', this.#onClientClose);
  }

  onConnect(abort: (error?: Error) => void): void {
    this.#abort = abort;
    this.#placed();
    // The client left while this request waited for a connection: do not send it.
    if (this.#finished) abort(new LeewayError('LEEWAY_ERR_UPSTREAM_RESET', 'the client went away', { host: this.host }));
  }

  #placed(): void {
    if (!this.#waiting) return;
    this.#waiting = false;
    this.pool.waiting--;
  }

  // undici passes the chunk itself (its typings still say a size).
  onBodySent(chunk: unknown): void {
    if (typeof chunk === 'string') this.#bytesIn += Buffer.byteLength(chunk);
    else if (chunk instanceof Uint8Array) this.#bytesIn += chunk.length;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    this.#status = statusCode;
    this.#resume = resume;
    const names: string[] = new Array<string>(rawHeaders.length);
    for (let i = 0; i < rawHeaders.length; i++) names[i] = (rawHeaders[i] as Buffer).toString('latin1');
    const req = this.req;
    const res = this.res;
    res.writeHead(statusCode, statusText, forwardHeaders(names, { keepTransferEncoding: req.httpVersionMajor >= 1 && req.httpVersionMinor >= 1 }));
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.#bytesOut += chunk.length;
    // write() says false for any chunk above the socket's 16 KiB mark, even one the kernel takes
    // at once; pausing then costs a stop and restart of the origin read per chunk. Pause only
    // when bytes really wait (a bounded amount: what one read brought, plus the limit).
    if (this.res.write(chunk) || this.res.writableLength <= PENDING_LIMIT) return true;
    // Backpressure: undici stops reading the origin until the client drains.
    this.res.once('drain', this.#onDrain);
    return false;
  }

  onComplete(): void {
    this.res.end();
    this.#finish(undefined, false);
  }

  onError(error: Error): void {
    this.#placed();
    const mapped = mapUndiciError(error, this.host);
    if (this.res.headersSent) {
      // Reset mid-response: the client must see a truncated message, never a silently short one.
      this.res.destroy();
      this.#finish(mapped, true);
    } else {
      this.#finish(mapped, false);
    }
  }

  readonly #onDrain = (): void => {
    this.#resume?.();
  };

  readonly #onClientClose = (): void => {
    // The client went away (abort mid-upload or mid-download): release the origin socket too.
    if (this.res.writableFinished || this.#finished) return;
    this.#finish(undefined, true);
    this.#abort?.(new LeewayError('LEEWAY_ERR_UPSTREAM_RESET', 'the client went away', { host: this.host }));
  };

  #finish(error: LeewayError | undefined, aborted: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    this.done({ status: this.#status, bytesIn: this.#bytesIn, bytesOut: this.#bytesOut, error, aborted });
  }
}

/** undici's own error codes, in the terms of the proxy's error table; socket errors keep their Node code. */
function mapUndiciError(error: Error, host: string): LeewayError {
  const code = (error as { code?: unknown }).code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new LeewayError('LEEWAY_ERR_UPSTREAM_TIMEOUT', 'the origin did not answer in time', { host }, { cause: error });
  }
  if (code === 'UND_ERR_SOCKET') {
    // "other side closed": the origin dropped the connection; its Node code, when any, is on the cause.
    const cause = (error as { cause?: unknown }).cause;
    if (cause !== undefined && typeof (cause as { code?: unknown }).code === 'string') return upstreamError(cause, host);
    return new LeewayError('LEEWAY_ERR_UPSTREAM_RESET', 'the origin closed the connection', { host, nodeCode: String(code) }, { cause: error });
  }
  return upstreamError(error, host);
}

export function hostHeader(target: { scheme: 'http' | 'https'; host: string; port: number }): string {
  // Only an IPv6 literal contains ':' (cheaper than isIP's regular expression on every request).
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  const defaultPort = target.scheme === 'https' ? 443 : 80;
  return target.port === defaultPort ? host : `${host}:${target.port}`;
}
