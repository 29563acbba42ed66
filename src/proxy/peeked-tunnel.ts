/**
 * The blind tunnel for a CONNECT whose client bytes were read before the tunnel was chosen (the
 * ClientHello peeked for its SNI, issue 4 item 3). Unlike openTunnel, the origin may already be
 * connected and the client already answered 200; the bytes read so far are replayed to the
 * origin untouched, then both directions are relayed as in any tunnel.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { LeewayError } from '../errors.js';
import type { Destination } from './egress.js';
import { relay } from './tunnel.js';
import type { TunnelOptions, TunnelResult } from './tunnel.js';
import { upstreamError } from './upstream-errors.js';

/** Connect to the origin; `done` gets the connected socket (paused, nothing read) or the mapped error. */
export function connectOrigin(host: string, destination: Destination, port: number, connectMs: number, done: (result: net.Socket | LeewayError) => void): net.Socket {
  // No `onread` fast path here: the origin may speak while the client is still being read, and
  // those bytes must wait in the stream, not be dropped.
  const origin = net.connect({ host: destination.address, family: destination.family, port, allowHalfOpen: true, noDelay: true });
  const timer = setTimeout(() => origin.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), connectMs);
  const onError = (error: Error): void => {
    clearTimeout(timer);
    done(upstreamError(error, host));
  };
  origin.once('error', onError);
  origin.once('connect', () => {
    clearTimeout(timer);
    origin.off('error', onError);
    // relay() installs its own handler; until then an error after connect must not crash.
    origin.on('error', () => undefined);
    done(origin);
  });
  return origin;
}

/** Replay `bytes` to a connected origin, then relay both ways until both sides are done. */
export function relayPeeked(client: Duplex, origin: net.Socket, bytes: Buffer, options: TunnelOptions, closed: (result: TunnelResult) => void): void {
  // The origin may have hung up while the client's first bytes were being read: relay() would
  // wait for a 'close' that has already happened.
  if (origin.destroyed || origin.readableEnded) {
    client.destroy();
    origin.destroy();
    return closed({ error: undefined, bytesIn: 0, bytesOut: 0 });
  }
  relay(client, origin, options, closed);
  // After relay() took its byte baseline, so the replayed bytes count as the client's.
  if (bytes.length > 0) origin.write(bytes);
}
