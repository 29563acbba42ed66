/**
 * The seam for TLS interception (issue 4 fills it). The proxy core decides *whether* a CONNECT
 * is intercepted; an Interceptor only terminates TLS toward the client and hands each decrypted
 * request back to the core through `inner`, which runs the same pipeline as plain HTTP.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

export interface InterceptTarget {
  /**
   * The name the interception was decided on, which the certificate carries and the inner
   * requests go to: the CONNECT host, or the ClientHello's SNI where it names another host.
   */
  readonly host: string;
  readonly port: number;
}

export interface InnerHandlers {
  /** One decrypted request; its URL is origin-form and its Host header (or the target) names the origin. */
  request(req: IncomingMessage, res: ServerResponse): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

export interface Interceptor {
  /**
   * Called after the proxy has answered `200 Connection Established` on `client`. `head` holds
   * bytes the client already sent past the CONNECT head (often the TLS ClientHello).
   */
  intercept(client: Duplex, head: Buffer, target: InterceptTarget, inner: InnerHandlers): void;
  /**
   * Optional: start whatever `intercept` for `host` will need (its certificate) while the
   * client's ClientHello is still on its way. Must not fail loudly: `intercept` reports errors.
   */
  prepare?(host: string): void;
  /** False when no CA is configured: the core then tunnels or refuses instead. */
  readonly available: boolean;
}
