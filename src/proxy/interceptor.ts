/**
 * The seam for TLS interception (issue 4 fills it). The proxy core decides *whether* a CONNECT
 * is intercepted; an Interceptor only terminates TLS toward the client and hands each decrypted
 * request back to the core through `inner`, which runs the same pipeline as plain HTTP.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

export interface InterceptTarget {
  /** Host as named in the CONNECT request line (the certificate is minted for this name). */
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
  /** False when no CA is configured: the core then tunnels or refuses instead. */
  readonly available: boolean;
}
