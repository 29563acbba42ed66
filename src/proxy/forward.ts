/**
 * The forward action: one request to the origin over a keep-alive connection, bodies streamed
 * both ways with backpressure, headers rewritten in one pass.
 *
 * The upstream client is our own small HTTP/1.1 client (origin-pool.ts for connections,
 * response-head.ts for parsing): on the 1 KiB load, undici's Pool spent most of the proxy's
 * own upstream CPU on what a proxy does not need (Request objects and header validation for
 * headers Node's parser had already checked, llhttp in WebAssembly, its handler layers), and
 * node:http's ClientRequest/Agent cost more still. What it does, per request:
 *
 * - the request head is one string written once; a body follows as it comes (Content-Length as
 *   sent, else chunked), paused while the origin does not read;
 * - the response head is parsed strictly (a bad one is a 502 naming the problem), 1xx interim
 *   answers are skipped, the body is framed by Content-Length, chunked (decoded here, framed
 *   again by Node for the client) or the connection's close, none for HEAD, 204 and 304;
 * - the origin is paused while too many bytes wait for a slow client;
 * - connect and response-head timeouts (504), socket errors mapped by upstream-errors.ts;
 * - a client that goes away closes its origin connection; a reused connection that fails before
 *   any response byte is retried once on a new one, for an idempotent request without a body
 *   (the origin may have closed it while it idled: RFC 9112 §9.3.1).
 *
 * node:http Agents stay for WebSockets.
 */
import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SecureContext } from 'node:tls';
import { LeewayError } from '../errors.js';
import { announcesBody, forwardHeaders, rawHeader } from './headers.js';
import type { Destination } from './egress.js';
import { upstreamError } from './upstream-errors.js';
import { ORIGIN_IDLE_MS, OriginPool } from './origin-pool.js';
import type { ConnectionOwner, UpstreamConnection } from './origin-pool.js';
import { BadResponse, ChunkedDecoder, MAX_HEAD_BYTES, headEnd, parseResponseHead } from './response-head.js';
import type { ResponseHead } from './response-head.js';

export { OriginPool } from './origin-pool.js';

export interface OriginAgents {
  readonly http: http.Agent;
  /** One https Agent per upstream trust (system roots, or roots plus the extra bundle). */
  https(secureContext: SecureContext | undefined): https.Agent;
  /** The keep-alive pool toward one origin (scheme, host as named, port, resolved address, trust). */
  pool(target: ForwardTarget, secureContext: SecureContext | undefined, connectMs: number): OriginPool;
  destroy(): void;
}

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
      // The host is part of the key: it is the TLS server name of the pool's https connections.
      const key = `${target.scheme} ${target.host} ${target.port} ${target.destination.address} ${contextId}`;
      let pool = pools.get(key);
      if (pool === undefined) {
        pool = new OriginPool({ secure, address: target.destination.address, port: target.port, host: target.host, secureContext: secure ? secureContext : undefined, connectMs });
        if (pools.size >= MAX_POOLS) {
          const oldest = pools.keys().next().value as string;
          pools.get(oldest)?.close(false);
          pools.delete(oldest);
        }
        pools.set(key, pool);
      }
      return pool;
    },
    destroy() {
      httpAgent.destroy();
      for (const agent of all) agent.destroy();
      for (const pool of pools.values()) pool.close(true);
      pools.clear();
    },
  };
}

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
  const method = req.method ?? 'GET';
  // Node has decoded a chunked request body; it is framed again here, so Transfer-Encoding is not passed on.
  const headers = forwardHeaders(raw, { keepTransferEncoding: false, dropExpect: true, drop: options.dropHeader, host: hostHeader(target) });
  const hasBody = announcesBody(raw);
  const chunked = hasBody && rawHeader(raw, 'content-length') === undefined;
  // Header names and values come from Node's parser (no CR, LF or NUL), the path from parseAbsoluteTarget: nothing can be injected.
  let head = `${method} ${target.path} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i] as string}: ${headers[i + 1] as string}\r\n`;
  head += chunked ? 'Transfer-Encoding: chunked\r\n\r\n' : '\r\n';
  const pool = options.agents.pool(target, options.secureContext, options.upstreamMs);
  new Exchange(req, res, target.host, pool, head, method, hasBody, chunked, options.upstreamMs, done).start();
}

const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

const enum Phase {
  Connecting,
  Head,
  Body,
  Done,
}

/**
 * One request and its response over one origin connection. A class rather than closures: one
 * allocation per request, and the connection calls it back through ConnectionOwner.
 */
class Exchange implements ConnectionOwner {
  #connection: UpstreamConnection | undefined;
  #phase = Phase.Connecting;
  /** Response head bytes received so far when they came in pieces. */
  #partial: Buffer | undefined;
  #response: ResponseHead | undefined;
  #remaining = 0;
  #decoder: ChunkedDecoder | undefined;
  /** A decoded chunk not yet written (see #hold). */
  #held: Buffer | undefined;
  #timer: NodeJS.Timeout | undefined;
  #status = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #finished = false;
  #retried = false;
  #uploading = false;
  /** The request body has been written whole (true at once without a body). */
  #sent: boolean;
  /** False once the origin sent bytes beyond the response: the connection then closes. */
  #reusable = true;
  #answered = false;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly host: string,
    private readonly pool: OriginPool,
    private readonly head: string,
    private readonly method: string,
    private readonly hasBody: boolean,
    private readonly chunked: boolean,
    private readonly upstreamMs: number,
    private readonly done: (outcome: ForwardOutcome) => void,
  ) {
    this.#sent = !hasBody;
    res.on('close', this.#onClientClose);
  }

  start(): void {
    this.pool.acquire(this.#onConnection, this.#retried);
  }

  // ---- request ----------------------------------------------------------------------------------

  readonly #onConnection = (connection: UpstreamConnection | Error): void => {
    if (connection instanceof Error) {
      if (!this.#finished) this.#fail(upstreamError(connection, this.host));
      return;
    }
    // The client left while the connection was opening: it serves the next request instead.
    if (this.#finished) return this.pool.release(connection);
    connection.owner = this;
    this.#connection = connection;
    this.#phase = Phase.Head;
    connection.socket.write(this.head, 'latin1');
    this.#timer = setTimeout(this.#onTimeout, this.upstreamMs);
    if (this.hasBody && !this.#uploading) {
      this.#uploading = true;
      this.req.on('data', this.#onRequestData);
      this.req.on('end', this.#onRequestEnd);
    }
  };

  readonly #onRequestData = (chunk: Buffer): void => {
    const connection = this.#connection;
    // An empty piece framed as a chunk would read as the body's end.
    if (connection === undefined || chunk.length === 0) return;
    this.#bytesIn += chunk.length;
    // Waiting for the head counts from the last byte sent, as a long upload is no silent origin.
    this.#timer?.refresh();
    const socket = connection.socket;
    let flowing: boolean;
    if (this.chunked) {
      socket.cork();
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      flowing = socket.write('\r\n', 'latin1');
      socket.uncork();
    } else {
      flowing = socket.write(chunk);
    }
    if (!flowing) {
      // Backpressure: stop reading the client until the origin takes what waits.
      this.req.pause();
      socket.once('drain', this.#onOriginDrain);
    }
  };

  readonly #onOriginDrain = (): void => {
    if (this.#connection !== undefined) this.req.resume();
  };

  readonly #onRequestEnd = (): void => {
    const connection = this.#connection;
    if (connection === undefined) return;
    if (this.chunked) connection.socket.write('0\r\n\r\n', 'latin1');
    this.#sent = true;
    this.#stopUpload(false);
    this.#timer?.refresh();
  };

  /** Stops forwarding the request body; `drain` reads the rest and drops it, so the client connection stays usable. */
  #stopUpload(drain: boolean): void {
    if (!this.#uploading) return;
    this.#uploading = false;
    this.req.off('data', this.#onRequestData);
    this.req.off('end', this.#onRequestEnd);
    if (drain) this.req.resume();
  }

  // ---- response ---------------------------------------------------------------------------------

  onData(chunk: Buffer): void {
    this.#answered = true;
    if (this.#phase === Phase.Body) return this.#body(chunk, 0);
    if (this.#phase !== Phase.Head) return;
    let buffer = chunk;
    let from = 0;
    if (this.#partial !== undefined) {
      from = this.#partial.length;
      buffer = Buffer.concat([this.#partial, chunk]);
      this.#partial = undefined;
    }
    for (;;) {
      const end = headEnd(buffer, from);
      if (end === -1 || end > MAX_HEAD_BYTES) {
        if (buffer.length > MAX_HEAD_BYTES) return this.#fail(badResponse(this.host, `its head is larger than ${MAX_HEAD_BYTES / 1024} KiB`));
        this.#partial = buffer;
        return;
      }
      let response: ResponseHead;
      try {
        response = parseResponseHead(buffer.toString('latin1', 0, end), this.method);
      } catch (error) {
        if (error instanceof BadResponse) return this.#fail(badResponse(this.host, error.message));
        throw error;
      }
      if (response.status >= 200) return this.#respond(response, buffer, end);
      // 101 only answers an Upgrade, which this path never forwards.
      if (response.status === 101) return this.#fail(badResponse(this.host, 'it switched protocols unasked'));
      // An interim 1xx: the final answer follows on the same connection (RFC 9110 §15.2).
      if (end === buffer.length) return;
      buffer = buffer.subarray(end);
      from = 0;
    }
  }

  #respond(response: ResponseHead, buffer: Buffer, end: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#response = response;
    this.#status = response.status;
    const req = this.req;
    let headers = forwardHeaders(response.rawHeaders, { keepTransferEncoding: req.httpVersionMajor >= 1 && req.httpVersionMinor >= 1 });
    if (response.lengthOverridden) headers = withoutContentLength(headers);
    try {
      if (response.statusText === '') this.res.writeHead(response.status, headers);
      else this.res.writeHead(response.status, response.statusText, headers);
    } catch (error) {
      // Node refuses characters a header may not carry: the origin's answer cannot be passed on.
      const code = (error as { code?: unknown }).code;
      return this.#fail(badResponse(this.host, code === 'ERR_INVALID_CHAR' ? 'a header value holds a forbidden character' : 'a header cannot be passed on'));
    }
    this.#phase = Phase.Body;
    switch (response.framing) {
      case 'none':
        if (end < buffer.length) this.#reusable = false;
        return this.#complete(undefined);
      case 'length':
        this.#remaining = response.contentLength;
        if (response.contentLength === 0) {
          if (end < buffer.length) this.#reusable = false;
          return this.#complete(undefined);
        }
        break;
      case 'chunked':
        this.#decoder = new ChunkedDecoder();
        break;
      case 'close':
        break;
    }
    if (end < buffer.length) this.#body(buffer, end);
  }

  #body(chunk: Buffer, offset: number): void {
    const response = this.#response as ResponseHead;
    switch (response.framing) {
      case 'length': {
        const available = chunk.length - offset;
        const piece = offset === 0 ? chunk : chunk.subarray(offset);
        if (available < this.#remaining) {
          this.#remaining -= available;
          return this.#write(piece);
        }
        if (available > this.#remaining) this.#reusable = false;
        const last = available === this.#remaining ? piece : piece.subarray(0, this.#remaining);
        this.#remaining = 0;
        return this.#complete(last);
      }
      case 'chunked': {
        let end: number;
        try {
          end = (this.#decoder as ChunkedDecoder).push(chunk, offset, this.#hold);
        } catch (error) {
          if (error instanceof BadResponse) return this.#fail(badResponse(this.host, error.message));
          throw error;
        }
        const held = this.#held;
        this.#held = undefined;
        if (end === -1) {
          if (held !== undefined) this.#write(held);
          return;
        }
        if (end < chunk.length) this.#reusable = false;
        // The last piece goes with the end: Node then sends it and the closing chunk in one write.
        return this.#complete(held);
      }
      case 'close':
        return this.#write(offset === 0 ? chunk : chunk.subarray(offset));
      case 'none':
        // Bytes after a bodiless response: the connection is out of step and is closed.
        this.#reusable = false;
        return;
    }
  }

  /** Keeps the latest decoded piece back, so the one that ends the body can go out with the end. */
  readonly #hold = (piece: Buffer): void => {
    if (this.#held !== undefined) this.#write(this.#held);
    this.#held = piece;
  };

  readonly #write = (piece: Buffer): void => {
    this.#bytesOut += piece.length;
    // write() says false for any chunk above the socket's 16 KiB mark, even one the kernel takes
    // at once; pausing then costs a stop and restart of the origin read per chunk. Pause only
    // when bytes really wait (a bounded amount: what one read brought, plus the limit).
    if (this.res.write(piece) || this.res.writableLength <= PENDING_LIMIT) return;
    this.#connection?.socket.pause();
    this.res.once('drain', this.#onClientDrain);
  };

  readonly #onClientDrain = (): void => {
    this.#connection?.socket.resume();
  };

  /** The response is whole: end it for the client and give the connection back (or close it). */
  #complete(last: Buffer | undefined): void {
    this.#phase = Phase.Done;
    if (last === undefined) {
      this.res.end();
    } else {
      this.#bytesOut += last.length;
      // One write for the head and a body that came whole (Node sends them together).
      this.res.end(last);
    }
    const connection = this.#connection as UpstreamConnection;
    this.#connection = undefined;
    connection.owner = undefined;
    if (this.#reusable && this.#sent && (this.#response as ResponseHead).keepAlive) {
      this.pool.release(connection);
    } else {
      // The origin answered before the whole upload: what it did not read cannot be left on a reused connection.
      this.#stopUpload(true);
      connection.destroy();
    }
    this.#finish(undefined, false);
  }

  // ---- failures ---------------------------------------------------------------------------------

  onClose(error: Error | undefined): void {
    const connection = this.#connection as UpstreamConnection;
    this.#connection = undefined;
    if (this.#finished) return;
    if (this.#phase === Phase.Body) {
      // Close-delimited: the close is the end (unless it came with an error: then it is cut short).
      if ((this.#response as ResponseHead).framing === 'close' && error === undefined) {
        this.#phase = Phase.Done;
        this.res.end();
        return this.#finish(undefined, false);
      }
      return this.#fail(new LeewayError('LEEWAY_ERR_UPSTREAM_RESET', 'the origin closed the connection mid-response', { host: this.host, nodeCode: nodeCode(error) }, { cause: error }));
    }
    // A connection the origin closed while it idled here (kept alive, or prewarmed): once, on a new
    // one (RFC 9112 §9.3.1), and only an idempotent request, which a proxy alone may repeat (RFC 9110 §9.2.2).
    if (!this.#answered && !this.hasBody && connection.reused && !this.#retried && IDEMPOTENT.has(this.method)) {
      this.#retried = true;
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#phase = Phase.Connecting;
      return this.start();
    }
    this.#fail(error === undefined ? new LeewayError('LEEWAY_ERR_UPSTREAM_RESET', 'the origin closed the connection', { host: this.host }) : upstreamError(error, this.host));
  }

  readonly #onTimeout = (): void => {
    this.#timer = undefined;
    this.#fail(new LeewayError('LEEWAY_ERR_UPSTREAM_TIMEOUT', 'the origin did not answer in time', { host: this.host }));
  };

  #fail(error: LeewayError): void {
    if (this.#finished) return;
    this.#dropConnection();
    this.#stopUpload(true);
    if (this.res.headersSent) {
      // Cut mid-response: the client must see a truncated message, never a silently short one.
      this.res.destroy();
      this.#finish(error, true);
    } else {
      this.#finish(error, false);
    }
  }

  readonly #onClientClose = (): void => {
    // The client went away (abort mid-upload or mid-download): release the origin socket too.
    if (this.res.writableFinished || this.#finished) return;
    this.#dropConnection();
    this.#stopUpload(false);
    this.#finish(undefined, true);
  };

  /** Closes the origin connection this exchange holds, if any: it cannot serve another request. */
  #dropConnection(): void {
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection === undefined) return;
    connection.owner = undefined;
    connection.destroy();
  }

  #finish(error: LeewayError | undefined, aborted: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.done({ status: this.#status, bytesIn: this.#bytesIn, bytesOut: this.#bytesOut, error, aborted });
  }
}

function badResponse(host: string, why: string): LeewayError {
  return new LeewayError('LEEWAY_ERR_UPSTREAM', `the origin sent a malformed response: ${why}`, { host, nodeCode: 'LEEWAY_BAD_RESPONSE' });
}

function nodeCode(error: Error | undefined): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function withoutContentLength(headers: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    if (name.length !== 14 || name.toLowerCase() !== 'content-length') out.push(name, headers[i + 1] as string);
  }
  return out;
}

export function hostHeader(target: { scheme: 'http' | 'https'; host: string; port: number }): string {
  // Only an IPv6 literal contains ':' (cheaper than isIP's regular expression on every request).
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  const defaultPort = target.scheme === 'https' ? 443 : 80;
  return target.port === defaultPort ? host : `${host}:${target.port}`;
}
