/**
 * The tunnel action (issue 3 item 4): after CONNECT, bytes are relayed both ways with pipe()
 * (backpressure), each direction closed on its own (half-close), and the pair torn down on
 * error or when idle. The client is answered 200 only once the origin accepted the connection,
 * so a refused origin still gets a proper 502.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { LeewayError } from '../errors.js';
import type { Destination } from './egress.js';
import { upstreamError } from './upstream-errors.js';

export interface TunnelOptions {
  readonly idleMs: number;
  readonly connectMs: number;
  /** Called per chunk relayed; keep it cheap. */
  readonly onBytes?: ((direction: 'client-to-origin' | 'origin-to-client', bytes: number) => void) | undefined;
}

export interface TunnelResult {
  readonly error: LeewayError | undefined;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/**
 * Open the origin connection; on success write the 200, relay, and call `closed` when both
 * sides are done. On failure call `failed` with the mapped error (nothing was written yet).
 */
export function openTunnel(
  client: Duplex,
  head: Buffer,
  host: string,
  destination: Destination,
  port: number,
  options: TunnelOptions,
  failed: (error: LeewayError) => void,
  closed: (result: TunnelResult) => void,
): void {
  const origin = net.connect({ host: destination.address, family: destination.family, port, allowHalfOpen: true, noDelay: true });
  let connected = false;
  const connectTimer = setTimeout(() => origin.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), options.connectMs);
  const onEarlyClientClose = (): void => {
    origin.destroy();
  };
  client.once('close', onEarlyClientClose);
  origin.once('error', (error) => {
    clearTimeout(connectTimer);
    if (!connected) {
      client.off('close', onEarlyClientClose);
      failed(upstreamError(error, host));
    }
  });
  origin.once('connect', () => {
    clearTimeout(connectTimer);
    connected = true;
    client.off('close', onEarlyClientClose);
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) origin.write(head);
    relay(client, origin, options, closed);
  });
}

/** Relay two connected duplexes until both directions ended or one side failed. */
export function relay(client: Duplex, origin: net.Socket, options: TunnelOptions, closed: (result: TunnelResult) => void): void {
  let bytesIn = 0;
  let bytesOut = 0;
  let open = 2;
  const onBytes = options.onBytes;
  const destroyBoth = (): void => {
    client.destroy();
    origin.destroy();
  };
  // A side that closed after finishing both directions: end the other gracefully so its
  // buffered bytes are flushed; errors and idle timeouts tear both down at once.
  const onClose = (other: Duplex) => (): void => {
    other.end();
    if (--open === 0) closed({ error: undefined, bytesIn, bytesOut });
  };
  client.on('data', (chunk: Buffer) => {
    bytesIn += chunk.length;
    onBytes?.('client-to-origin', chunk.length);
  });
  origin.on('data', (chunk: Buffer) => {
    bytesOut += chunk.length;
    onBytes?.('origin-to-client', chunk.length);
  });
  client.on('error', destroyBoth);
  origin.on('error', destroyBoth);
  client.once('close', onClose(origin));
  origin.once('close', onClose(client));
  if ('setTimeout' in client && typeof client.setTimeout === 'function') (client as net.Socket).setTimeout(options.idleMs, destroyBoth);
  origin.setTimeout(options.idleMs, destroyBoth);
  client.pipe(origin);
  origin.pipe(client);
}
