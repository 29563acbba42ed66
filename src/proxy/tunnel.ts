/**
 * The tunnel action (issue 3 item 4): after CONNECT, bytes are relayed both ways with
 * backpressure (client to origin with pipe(), origin to client read with `onread`), each
 * direction closed on its own (half-close), and the pair torn down on error or when idle. The
 * client is answered 200 only once the origin accepted the connection, so a refused origin
 * still gets a proper 502. A tunnel whose client was read first (its ClientHello peeked, issue 4
 * item 3) uses the same relay, with the bytes read so far replayed.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { LeewayError } from '../errors.js';
import type { Destination } from './egress.js';
import { upstreamError } from './upstream-errors.js';
import { READ_BUFFER } from './read-buffer.js';

export interface TunnelOptions {
  readonly idleMs: number;
  readonly connectMs: number;
  /** Called with the bytes moved in each direction about once a second, and when the tunnel closes. */
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
  const onEarlyClientClose = (): void => {
    link.socket.destroy();
  };
  client.once('close', onEarlyClientClose);
  const link = connectOrigin(host, destination, port, options.connectMs, (error) => {
    client.off('close', onEarlyClientClose);
    if (error !== undefined) return failed(error);
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    relayLink(client, link, head, options, closed);
  });
}

/**
 * What one read from a tunnel's origin takes at most: half of READ_BUFFER. A tunnel reads once
 * per turn of the event loop (see relay()), so this also bounds what one busy tunnel relays
 * before every other connection gets its turn.
 */
export const TUNNEL_READ_BYTES = 512 * 1024;
const TUNNEL_READ = READ_BUFFER.subarray(0, TUNNEL_READ_BYTES);

/**
 * An origin connection read with `onread` into one large shared buffer: a download then costs
 * a few syscalls and callbacks per MiB instead of one per 64 KiB. Bytes the origin sends before
 * relayLink() takes over (while the client's ClientHello is being read) are kept in `held`, and
 * the origin is not read further until then.
 */
export interface OriginLink {
  readonly socket: net.Socket;
  readonly held: Buffer[];
  /** Set by relayLink(): where the origin's bytes go from then on. */
  deliver: ((size: number) => boolean) | undefined;
  /** Called when the origin speaks before the relay started: a server that speaks first. */
  onHeld: (() => void) | undefined;
}

/** Connect to the origin; `done` gets undefined once connected, or the mapped error. */
export function connectOrigin(host: string, destination: Destination, port: number, connectMs: number, done: (error: LeewayError | undefined) => void): OriginLink {
  const held: Buffer[] = [];
  const socket = net.connect({
    host: destination.address,
    family: destination.family,
    port,
    allowHalfOpen: true,
    noDelay: true,
    onread: {
      buffer: TUNNEL_READ,
      callback: (size: number): boolean => {
        if (link.deliver !== undefined) return link.deliver(size);
        held.push(Buffer.from(TUNNEL_READ.subarray(0, size)));
        link.onHeld?.();
        // Stop reading: the relay resumes the origin once it has written these bytes.
        return false;
      },
    },
  });
  const link: OriginLink = { socket, held, deliver: undefined, onHeld: undefined };
  const timer = setTimeout(() => socket.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), connectMs);
  const onError = (error: Error): void => {
    clearTimeout(timer);
    done(upstreamError(error, host));
  };
  socket.once('error', onError);
  socket.once('connect', () => {
    clearTimeout(timer);
    socket.off('error', onError);
    // relayLink() installs its own handler; until then an error after connect must not crash.
    socket.on('error', () => undefined);
    done(undefined);
  });
  return link;
}

/**
 * Relay a client and a connected OriginLink both ways: first the bytes the origin already sent
 * to the client, and `replay` (the client's bytes read so far) to the origin.
 */
export function relayLink(client: Duplex, link: OriginLink, replay: Buffer, options: TunnelOptions, closed: (result: TunnelResult) => void): void {
  const origin = link.socket;
  // The origin may have hung up while the client's first bytes were being read: relay() would
  // wait for a 'close' that has already happened.
  if (origin.destroyed || (origin.readableEnded && link.held.length === 0)) {
    client.destroy();
    origin.destroy();
    return closed({ error: undefined, bytesIn: 0, bytesOut: 0 });
  }
  let heldBytes = 0;
  for (const chunk of link.held) heldBytes += chunk.length;
  link.deliver = relay(client, origin, options, closed, true, heldBytes);
  // After relay() took its byte baseline, so the replayed bytes count as the client's.
  if (replay.length > 0) origin.write(replay);
  if (link.held.length > 0) {
    for (const chunk of link.held.splice(0)) client.write(chunk);
    origin.resume();
  }
}

/**
 * Relay two connected duplexes until both directions ended or one side failed. `heldBytes`:
 * bytes already read from the origin (and not yet relayed) that count as the tunnel's.
 */
export function relay(client: Duplex, origin: net.Socket, options: TunnelOptions, closed: (result: TunnelResult) => void, originUsesOnread = false, heldBytes = 0): (size: number) => boolean {
  // Bytes are read from the origin socket's counters, not counted per chunk: no JavaScript runs
  // per chunk besides pipe() itself, which keeps tunnels close to a raw relay.
  const entry: Counted = { origin, onBytes: options.onBytes, baseWritten: origin.bytesWritten, baseRead: origin.bytesRead - heldBytes, reportedUp: 0, reportedDown: 0 };
  if (entry.onBytes !== undefined) reporter.add(entry);
  let open = 2;
  const destroyBoth = (): void => {
    client.destroy();
    origin.destroy();
  };
  // A side that closed after finishing both directions: end the other gracefully so its
  // buffered bytes are flushed; errors and idle timeouts tear both down at once.
  const onClose = (other: Duplex) => (): void => {
    other.end();
    if (--open === 0) {
      reporter.remove(entry);
      closed({ error: undefined, bytesIn: origin.bytesWritten - entry.baseWritten, bytesOut: origin.bytesRead - entry.baseRead });
    }
  };
  client.on('error', destroyBoth);
  origin.on('error', destroyBoth);
  client.once('close', onClose(origin));
  origin.once('close', onClose(client));
  if ('setTimeout' in client && typeof client.setTimeout === 'function') (client as net.Socket).setTimeout(options.idleMs, destroyBoth);
  origin.setTimeout(options.idleMs, destroyBoth);
  client.pipe(origin);
  if (!originUsesOnread) {
    origin.pipe(client);
    return () => true;
  }
  // The origin socket was created with `onread`: no 'data' events, so do pipe()'s work by hand.
  origin.once('end', () => client.end());
  // Bytes leave TUNNEL_READ in recycled slots, returned when the client socket has written
  // them: a fresh Buffer per read cost page faults and major GCs (about a third of the tunnel's
  // CPU in a profile). Writes complete in order, so a FIFO says which slot a callback frees.
  const inFlight: Buffer[] = [];
  const written = (): void => {
    const slot = inFlight.shift();
    if (slot !== undefined) releaseSlot(slot);
  };
  const readOn = (): void => {
    origin.resume();
  };
  // A socket calls back once the kernel has the bytes; another Duplex may call back while it
  // still holds them, so it gets a fresh copy.
  const recycle = client instanceof net.Socket;
  return (size) => {
    let ok: boolean;
    if (recycle) {
      const slot = takeSlot(size);
      TUNNEL_READ.copy(slot, 0, 0, size);
      inFlight.push(slot);
      ok = client.write(slot.subarray(0, size), written);
    } else {
      ok = client.write(Buffer.from(TUNNEL_READ.subarray(0, size)));
    }
    // Returning false pauses the origin socket. One read per turn of the event loop: libuv
    // would otherwise read again at once, up to 32 times, while the origin keeps the socket
    // full, so one fast download could hold the loop for tens of MiB while every other
    // connection waits. Reading what one turn brings also leaves the origin's later bytes
    // queued in the kernel until our read opens the window: on loopback that moves the origin's
    // sending work onto the proxy's core, as Squid's one read per socket and loop does; read to
    // the bottom each time, the origin's own CPU per MiB doubled and the tunnel ran at 0.77-0.79
    // of direct instead of 0.94-1.06 (README, tunnel figures of 2026-11-27).
    // (`ok` is false for any chunk above 16 KiB, even one the kernel took at once: wait for
    // 'drain' only when bytes really wait.)
    if (ok || client.writableLength === 0) {
      setImmediate(readOn);
      return false;
    }
    client.once('drain', readOn);
    return false;
  };
}

/**
 * Slots in three sizes (a read is copied into the smallest that holds it, so a slow client
 * holds at most 4x its bytes), with a few of each kept free for reuse.
 */
const SLOT_SIZES = [64 * 1024, 256 * 1024, TUNNEL_READ_BYTES] as const;
const KEPT_FREE = [32, 8, 4] as const;
const freeSlots: Buffer[][] = [[], [], []];

function slotClass(size: number): number {
  return size <= SLOT_SIZES[0] ? 0 : size <= SLOT_SIZES[1] ? 1 : 2;
}

function takeSlot(size: number): Buffer {
  const k = slotClass(size);
  return (freeSlots[k] as Buffer[]).pop() ?? Buffer.allocUnsafeSlow(SLOT_SIZES[k] as number);
}

function releaseSlot(slot: Buffer): void {
  const k = slotClass(slot.length);
  const free = freeSlots[k] as Buffer[];
  if (free.length < (KEPT_FREE[k] as number)) free.push(slot);
}

interface Counted {
  readonly origin: net.Socket;
  readonly onBytes: TunnelOptions['onBytes'];
  readonly baseWritten: number;
  readonly baseRead: number;
  reportedUp: number;
  reportedDown: number;
}

/**
 * One timer for every open tunnel: each second, report the bytes that moved since the last
 * report (so long tunnels count as active while open), and a last time when a tunnel closes.
 */
class ByteReporter {
  readonly #entries = new Set<Counted>();
  #timer: NodeJS.Timeout | undefined;

  add(entry: Counted): void {
    this.#entries.add(entry);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => {
        for (const e of this.#entries) this.#report(e);
      }, 1_000);
      this.#timer.unref();
    }
  }

  remove(entry: Counted): void {
    if (!this.#entries.delete(entry)) return;
    this.#report(entry);
    if (this.#entries.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #report(e: Counted): void {
    const up = e.origin.bytesWritten - e.baseWritten;
    const down = e.origin.bytesRead - e.baseRead;
    if (up > e.reportedUp) e.onBytes?.('client-to-origin', up - e.reportedUp);
    if (down > e.reportedDown) e.onBytes?.('origin-to-client', down - e.reportedDown);
    e.reportedUp = up;
    e.reportedDown = down;
  }
}

const reporter = new ByteReporter();
