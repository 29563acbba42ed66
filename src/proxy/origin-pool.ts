/**
 * Keep-alive connections toward one origin for the forward action's own HTTP/1.1 client
 * (forward.ts): one request per connection at a time, the most recently used idle connection
 * first (LIFO keeps few sockets warm), idle ones closed before the origin's keep-alive timeout.
 * https connections are verified against the trust in force (system roots, or roots plus
 * settings.tls.extraCaBundle); `rejectUnauthorized` is never turned off.
 *
 * A connection's socket listeners are attached once, when it opens, and route events to the
 * exchange that holds it: no listener is added or removed per request.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { SecureContext } from 'node:tls';
import { isIP } from 'node:net';
import { READ_BUFFER } from './read-buffer.js';

// Below Node's default server keepAliveTimeout (5 s) so we drop an idle socket before the origin does.
export const ORIGIN_IDLE_MS = 4_000;

/** What holds a connection: the exchange of one request and response. */
export interface ConnectionOwner {
  onData(chunk: Buffer): void;
  /** The socket closed; `error` is the socket error that closed it, if any. */
  onClose(error: Error | undefined): void;
}

export interface OriginAddress {
  readonly secure: boolean;
  /** Resolved IP address to connect to. */
  readonly address: string;
  readonly port: number;
  /** The host as the client named it: the TLS server name (none for an IP literal). */
  readonly host: string;
  readonly secureContext: SecureContext | undefined;
  readonly connectMs: number;
}

export class UpstreamConnection {
  owner: ConnectionOwner | undefined;
  /** Taken from the idle list: the origin may have closed it meanwhile (then a bodiless request is retried). */
  reused = false;
  idleSince = 0;
  open = false;
  closed = false;
  #error: Error | undefined;

  constructor(
    readonly socket: net.Socket,
    readonly pool: OriginPool,
  ) {
    socket.on('data', this.#onData);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
  }

  destroy(): void {
    this.socket.destroy();
  }

  readonly #onData = (chunk: Buffer): void => {
    this.deliver(chunk);
  };

  /** Bytes from the origin ('data' on a TLS socket, `onread` on a plain one). */
  deliver(chunk: Buffer): void {
    const owner = this.owner;
    // Bytes on an idle connection answer no request: it cannot be trusted with the next one.
    if (owner === undefined) return void this.socket.destroy();
    owner.onData(chunk);
  }

  readonly #onError = (error: Error): void => {
    this.#error ??= error;
  };

  readonly #onClose = (): void => {
    this.closed = true;
    this.pool.closed(this);
    const owner = this.owner;
    this.owner = undefined;
    owner?.onClose(this.#error);
  };
}

type Waiter = (connection: UpstreamConnection | Error) => void;

/**
 * A connection opening: who gets it once open (undefined for a prewarmed one nobody claimed yet;
 * it then goes idle).
 */
interface Opening {
  readonly connection: UpstreamConnection;
  waiter: Waiter | undefined;
}

export class OriginPool {
  /** Connections opened by prewarm() (counted for tests and diagnostics). */
  prewarmed = 0;
  /** Idle connections, oldest first; taken from the end. */
  readonly #idle: UpstreamConnection[] = [];
  readonly #live = new Set<UpstreamConnection>();
  /** A prewarmed connection still opening and not yet claimed by a request. */
  #warm: Opening | undefined;
  #sweep: NodeJS.Timeout | undefined;
  #session: Buffer | undefined;
  #closed = false;

  constructor(readonly origin: OriginAddress) {}

  /** Connections open or opening (for tests and diagnostics). */
  get size(): number {
    return this.#live.size;
  }

  /**
   * Hands `waiter` a connection: the most recent idle one, the prewarmed one still opening, or a
   * new one. `fresh` skips reused connections (the retry after a reused one failed).
   */
  acquire(waiter: Waiter, fresh = false): void {
    if (!fresh) {
      const idle = this.#idle;
      const now = Date.now();
      while (idle.length > 0) {
        const connection = idle.pop() as UpstreamConnection;
        if (now - connection.idleSince < ORIGIN_IDLE_MS && !connection.socket.destroyed) {
          connection.reused = true;
          return waiter(connection);
        }
        connection.destroy();
      }
      const warm = this.#warm;
      if (warm !== undefined) {
        this.#warm = undefined;
        warm.waiter = waiter;
        return;
      }
    }
    this.#open(waiter);
  }

  /** Gives a connection back after a complete exchange; it is kept for the next request. */
  release(connection: UpstreamConnection): void {
    connection.owner = undefined;
    if (connection.closed) return void connection.destroy();
    this.#keepIdle(connection);
  }

  /** Keeps an open connection for a later request, closed by the sweep if none comes in time. */
  #keepIdle(connection: UpstreamConnection): void {
    if (this.#closed) return void connection.destroy();
    connection.idleSince = Date.now();
    this.#idle.push(connection);
    this.#sweep ??= setTimeout(this.#sweepIdle, ORIGIN_IDLE_MS).unref();
  }

  /**
   * Opens one connection for a first request to `host` (https only: issue 4), unless one is open
   * or opening here. The pool is per host name already; a mismatch would name the wrong server.
   */
  prewarm(host: string): void {
    if (!this.origin.secure || this.#closed || this.#live.size > 0 || host.toLowerCase() !== this.origin.host.toLowerCase()) return;
    this.prewarmed++;
    this.#open(undefined);
  }

  /** Closes idle connections and refuses to keep any more; `all` closes those in use too. */
  close(all: boolean): void {
    this.#closed = true;
    if (this.#sweep !== undefined) clearTimeout(this.#sweep);
    this.#sweep = undefined;
    for (const connection of this.#idle.splice(0)) connection.destroy();
    if (this.#warm !== undefined) this.#warm.connection.destroy();
    this.#warm = undefined;
    if (all) for (const connection of this.#live) connection.destroy();
  }

  /** Called by a connection whose socket closed. */
  closed(connection: UpstreamConnection): void {
    this.#live.delete(connection);
    const at = this.#idle.indexOf(connection);
    if (at !== -1) this.#idle.splice(at, 1);
  }

  #open(waiter: Waiter | undefined): void {
    const origin = this.origin;
    let socket: net.Socket;
    // Bytes read since the socket last yielded the event loop (see the onread callback).
    let sinceYield = 0;
    // After a yield: read again unless the owner paused the socket meanwhile (its own resume
    // restarts reading then).
    const readOn = (): void => {
      if (!socket.isPaused() && !socket.destroyed) socket.resume();
    };
    if (origin.secure) {
      const options: tls.ConnectionOptions = { host: origin.address, port: origin.port, ALPNProtocols: ['http/1.1'] };
      // No SNI for an IP literal (RFC 6066 §3); the certificate is then checked against the address.
      if (isIP(origin.host) === 0) options.servername = origin.host;
      if (origin.secureContext !== undefined) options.secureContext = origin.secureContext;
      if (this.#session !== undefined) options.session = this.#session;
      const secure = tls.connect(options);
      secure.on('session', (session: Buffer) => {
        this.#session = session;
      });
      socket = secure;
    } else {
      // Read with `onread` into the shared buffer: a response body then costs a few reads and
      // callbacks per MiB instead of one per 64 KiB (each chunk is copied out at once, so the
      // owner gets a Buffer of its own, as with 'data' events).
      socket = net.connect({
        host: origin.address,
        port: origin.port,
        onread: {
          buffer: READ_BUFFER,
          callback: (size: number): boolean => {
            const chunk = Buffer.allocUnsafe(size);
            READ_BUFFER.copy(chunk, 0, 0, size);
            connection.deliver(chunk);
            // The owner may have paused the socket (a slow client): stop reading until it resumes.
            if (socket.isPaused()) return false;
            // libuv reads again at once, up to 32 times, while the origin keeps the socket full:
            // after READ_BUFFER's size read since the last pause, read on at the next turn of the
            // event loop instead, so one download cannot hold the loop for tens of MiB while
            // every other connection waits. (Yielding after every read of 64 KiB or more cost
            // the 1 MiB bench about a sixth of its rate.)
            sinceYield += size;
            if (sinceYield < READ_BUFFER.length) return true;
            sinceYield = 0;
            setImmediate(readOn);
            return false;
          },
        },
      });
    }
    socket.setNoDelay(true);
    const connection = new UpstreamConnection(socket, this);
    this.#live.add(connection);
    const opening: Opening = { connection, waiter };
    if (waiter === undefined) this.#warm = opening;
    const timer = setTimeout(() => {
      socket.destroy(Object.assign(new Error(`no connection to the origin within ${origin.connectMs} ms`), { code: 'ETIMEDOUT' }));
    }, origin.connectMs);
    const settle = (error: Error | undefined): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.off(origin.secure ? 'secureConnect' : 'connect', onOpen);
      if (this.#warm === opening) this.#warm = undefined;
      const claimed = opening.waiter;
      if (error !== undefined) {
        socket.destroy();
        return claimed?.(error);
      }
      connection.open = true;
      // TCP keep-alive probes find an origin that vanished while the connection idled.
      socket.setKeepAlive(true, 60_000);
      if (claimed !== undefined) return claimed(connection);
      // Prewarmed and still unclaimed: it waits idle like any other.
      this.#keepIdle(connection);
    };
    const onOpen = (): void => settle(undefined);
    const onError = (error: Error): void => settle(error);
    socket.once(origin.secure ? 'secureConnect' : 'connect', onOpen);
    socket.once('error', onError);
  }

  readonly #sweepIdle = (): void => {
    this.#sweep = undefined;
    const idle = this.#idle;
    const now = Date.now();
    // Oldest first: stop at the first one still young enough.
    while (idle.length > 0 && now - (idle[0] as UpstreamConnection).idleSince >= ORIGIN_IDLE_MS - 50) (idle.shift() as UpstreamConnection).destroy();
    if (idle.length > 0) this.#sweep = setTimeout(this.#sweepIdle, ORIGIN_IDLE_MS - (now - (idle[0] as UpstreamConnection).idleSince)).unref();
  };
}
