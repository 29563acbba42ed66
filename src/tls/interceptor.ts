/**
 * Terminates TLS toward the client of an intercepted CONNECT with a certificate minted for the
 * CONNECT host, and hands each decrypted request to the proxy's pipeline (`inner`).
 *
 * Which name the certificate carries: always `target.host`, the name the policy decided on and
 * the origin the pipeline will contact. The pipeline has already read the ClientHello and decided
 * on its SNI where that named another host, so the two agree; should a SNI still differ, it gets
 * no certificate of its own (minting for a name the policy never evaluated would let a client
 * steer interception) and the client sees a name mismatch, the safe failure. Clients send no SNI
 * for IP literals (RFC 6066 §3), which the target host covers.
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../log/logger.js';
import type { InnerHandlers, InterceptTarget, Interceptor } from '../proxy/interceptor.js';
import type { CertificateStore } from './certificate-store.js';
import { normaliseCertificateHost } from './leaf-certificate.js';

/** Bounded label values for `leeway_tls_client_handshake_failures_total{reason}`. */
export type HandshakeFailureReason =
  | 'unknown-ca'
  | 'bad-certificate'
  | 'certificate-unknown'
  | 'closed'
  | 'closed-after-handshake'
  | 'timeout'
  | 'protocol'
  | 'no-certificate';

/**
 * Clients that check pins after the handshake (OkHttp's CertificatePinner, Node's own
 * verification) complete it and hang up at once without a request. Browsers' unused preconnects
 * stay open far longer, so a close this soon after the handshake with no request is a refusal.
 */
const REFUSAL_WINDOW_MS = 1_000;

export interface TlsInterceptorOptions {
  readonly store: CertificateStore;
  readonly logger: Logger;
  /** Called once per failed client handshake, e.g. to count it in metrics. */
  readonly onHandshakeFailure?: (host: string, reason: HandshakeFailureReason) => void;
  /** A client must finish its handshake within this many ms. Default 10 s. */
  readonly handshakeTimeoutMs?: number;
  /** Hosts whose failures are counted; the least recent fall out. Default 1000. */
  readonly maxTrackedHosts?: number;
  /** Idle keep-alive connection inside the tunnel closed after this many ms. Default 60 s. */
  readonly keepAliveTimeoutMs?: number;
}

export interface TlsInterceptor extends Interceptor {
  /** Failed client handshakes per host since start (bounded), most recent first: for the admin page. */
  handshakeFailuresByHost(): ReadonlyArray<{ readonly host: string; readonly failures: number }>;
  /** All failed client handshakes since start, by reason. */
  readonly handshakeFailures: Readonly<Record<HandshakeFailureReason, number>>;
  /** Connections currently intercepted. */
  readonly open: number;
}

const ALERT_REASONS: Readonly<Record<string, HandshakeFailureReason>> = {
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'unknown-ca',
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: 'bad-certificate',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN: 'certificate-unknown',
  ECONNRESET: 'closed',
  EPIPE: 'closed',
};

export function createTlsInterceptor(options: TlsInterceptorOptions): TlsInterceptor {
  const { store, logger } = options;
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
  const failuresByHost = new LRUCache<string, number>({ max: options.maxTrackedHosts ?? 1000 });
  const failures: Record<HandshakeFailureReason, number> = {
    'unknown-ca': 0,
    'bad-certificate': 0,
    'certificate-unknown': 0,
    closed: 0,
    'closed-after-handshake': 0,
    timeout: 0,
    protocol: 0,
    'no-certificate': 0,
  };
  const innerFor = new WeakMap<object, InnerHandlers>();
  const served = new WeakSet<object>();
  let open = 0;

  // One never-listening HTTP server parses every decrypted connection; the socket says whose it is.
  const server = http.createServer({ keepAliveTimeout: options.keepAliveTimeoutMs ?? 60_000, noDelay: true });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const inner = innerFor.get(req.socket);
    if (inner === undefined) return void res.writeHead(500).end();
    served.add(req.socket);
    inner.request(req, res);
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const inner = innerFor.get(req.socket);
    if (inner === undefined) return void socket.destroy();
    served.add(req.socket);
    inner.upgrade(req, socket, head);
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (socket.writable && error.code !== 'ECONNRESET') socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });

  const recordFailure = (host: string, reason: HandshakeFailureReason, detail?: string): void => {
    failures[reason] += 1;
    failuresByHost.set(host, (failuresByHost.get(host) ?? 0) + 1);
    // The host, never the client's address: admins add pinned hosts to a do-not-inspect category.
    logger.warn({ host, reason, detail }, 'client refused the intercepted TLS handshake (a pinned app?); consider a do-not-inspect category for this host');
    options.onHandshakeFailure?.(host, reason);
  };

  const terminate = (client: Duplex, head: Buffer, host: string, context: SecureContext, inner: InnerHandlers): void => {
    // Bytes the client sent right behind its CONNECT (often the ClientHello): TLSSocket replays
    // what is buffered on the socket before it reads from the handle.
    if (head.length > 0) client.unshift(head);
    const socket = new TLSSocket(client, {
      isServer: true,
      secureContext: context,
      ALPNProtocols: ['http/1.1'],
      SNICallback: (servername, callback) => {
        if (sameHost(servername, host)) return callback(null, context);
        logger.debug({ host, sni: servername.slice(0, 255) }, 'SNI differs from the CONNECT host; presenting the CONNECT host certificate');
        callback(null, context);
      },
    });
    open += 1;
    let secured = false;
    let securedAt = 0;
    let failed = false;
    const fail = (reason: HandshakeFailureReason, detail?: string): void => {
      if ((secured && reason !== 'closed-after-handshake') || failed) return;
      failed = true;
      recordFailure(host, reason, detail);
    };
    const timer = setTimeout(() => {
      fail('timeout');
      socket.destroy();
    }, handshakeTimeoutMs);
    timer.unref();
    socket.once('secure', () => {
      secured = true;
      securedAt = Date.now();
      clearTimeout(timer);
      innerFor.set(socket, inner);
      server.emit('connection', socket);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!secured) fail(ALERT_REASONS[error.code ?? ''] ?? 'protocol', error.code);
      socket.destroy();
    });
    // Mid-handshake, a half-closed TLS socket would wait for the peer forever: end means gone.
    socket.once('end', () => {
      if (!secured) socket.destroy();
    });
    socket.once('close', () => {
      clearTimeout(timer);
      open -= 1;
      // A client that hangs up mid-handshake without an alert is how many pinned apps refuse.
      if (!secured) fail('closed');
      else if (!served.has(socket) && Date.now() - securedAt < REFUSAL_WINDOW_MS) fail('closed-after-handshake');
      client.destroy();
    });
    client.once('close', () => socket.destroy());
  };

  return {
    available: true,
    prepare(host: string): void {
      let name: string;
      try {
        name = normaliseCertificateHost(host);
      } catch {
        return;
      }
      // The mint is shared with the intercept() that follows; its failure is reported there.
      store.secureContextFor(name).catch(() => undefined);
    },
    intercept(client: Duplex, head: Buffer, target: InterceptTarget, inner: InnerHandlers): void {
      client.on('error', () => undefined);
      let host: string;
      try {
        host = normaliseCertificateHost(target.host);
      } catch {
        client.destroy();
        return;
      }
      store.secureContextFor(host).then(
        (context) => {
          if (client.destroyed) return;
          terminate(client, head, host, context, inner);
        },
        (error: unknown) => {
          logger.error({ host, err: error instanceof Error ? error.message : String(error) }, 'could not mint a certificate for an intercepted host');
          recordFailure(host, 'no-certificate');
          client.destroy();
        },
      );
    },
    handshakeFailuresByHost() {
      return [...failuresByHost.entries()].map(([host, count]) => ({ host, failures: count }));
    },
    get handshakeFailures() {
      return { ...failures };
    },
    get open() {
      return open;
    },
  };
}

function sameHost(servername: string, host: string): boolean {
  try {
    return normaliseCertificateHost(servername) === host;
  } catch {
    return false;
  }
}
