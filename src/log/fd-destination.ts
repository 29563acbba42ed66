/**
 * Where `leeway start` writes access lines: whole batches of bytes to a file descriptor, with
 * asynchronous writes that never block the proxy.
 *
 * pino's asynchronous destination (SonicBoom) takes strings: each 64 KiB batch of lines was
 * decoded into a string, concatenated, and encoded back into bytes for the write, about half of
 * what the account stage cost per request in a loop, most of it garbage for the collector.
 * Here a batch's buffer is handed over as it is, written, and given back for a later batch.
 *
 * To a regular file, a batch is written at once, synchronously: the page cache takes it in a few
 * microseconds and no reader can hold it back. To anything else (a pipe to a log collector, a
 * socket, a terminal) writes are asynchronous, in order, one at a time; a partial write
 * continues where it stopped; EAGAIN (a full non-blocking pipe) is retried shortly after. A
 * reader that stops reading cannot make the proxy grow without bound: past `maxQueuedBytes`
 * whole batches are dropped, and counted, until the queue drains. At exit, what is queued is written synchronously; a write
 * already out in the thread pool finishes there (as with pino's destination, it may then land
 * after the lines written at exit).
 */
import fs from 'node:fs';
import type { DestinationStream } from 'pino';

/** A destination that also takes a batch's bytes as they are (LineBatch uses it when present). */
export interface BufferDestination extends DestinationStream {
  /**
   * Write `buffer[0, length)`; the buffer now belongs to the destination until written. Returns
   * a buffer of at least the same size for the caller's next batch.
   */
  writeBuffer(buffer: Buffer, length: number): Buffer;
  /** Write what is queued, synchronously (at exit). */
  flushSync(): void;
  /** Once true (set at exit), every write is synchronous. */
  sync: boolean;
}

export function isBufferDestination(destination: DestinationStream): destination is BufferDestination {
  return typeof (destination as Partial<BufferDestination>).writeBuffer === 'function';
}

/** The part of node:fs a destination uses (tests pass one that writes partially or fails). */
export interface FdWriter {
  write(fd: number, buffer: Buffer, offset: number, length: number, position: null, callback: (error: NodeJS.ErrnoException | null, written: number) => void): void;
  writeSync(fd: number, buffer: Buffer, offset: number, length: number): number;
  fstatSync(fd: number): { isFile(): boolean };
}

export interface FdDestinationOptions {
  /** Beyond this many bytes waiting to be written, batches are dropped (default 16 MiB). */
  readonly maxQueuedBytes?: number;
  /** A write failed (other than EAGAIN) or batches were dropped: told once per kind of trouble until writes succeed again. */
  readonly onError?: (error: Error) => void;
  readonly writer?: FdWriter;
}

const DEFAULT_MAX_QUEUED_BYTES = 16 * 1024 * 1024;
/** How long to wait before writing again to a full non-blocking pipe. */
const EAGAIN_RETRY_MS = 10;
/** Buffers kept for reuse: one being written, one being filled, one spare. */
const SPARE_BUFFERS = 2;

/** Destinations with bytes not yet written: at exit they are written synchronously. */
const unwritten = new Set<FdDestination>();
let exitHookInstalled = false;

interface Chunk {
  readonly buffer: Buffer;
  readonly length: number;
  offset: number;
  /** Handed over by writeBuffer() and reusable once written (not a copy of a string). */
  readonly reusable: boolean;
}

export class FdDestination implements BufferDestination {
  sync = false;
  readonly #fd: number;
  readonly #writer: FdWriter;
  readonly #maxQueuedBytes: number;
  readonly #onError: (error: Error) => void;
  /** A regular file: written synchronously. */
  readonly #file: boolean;
  readonly #queue: Chunk[] = [];
  #queuedBytes = 0;
  #writing = false;
  readonly #spare: Buffer[] = [];
  #dropped = 0;
  #failing = false;
  readonly #idle: (() => void)[] = [];

  constructor(fd: number, options: FdDestinationOptions = {}) {
    if (!Number.isInteger(fd) || fd < 0) throw new TypeError(`not a file descriptor: ${fd}`);
    this.#fd = fd;
    this.#writer = options.writer ?? fs;
    this.#maxQueuedBytes = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.#onError = options.onError ?? (() => undefined);
    this.#file = isRegularFile(this.#writer, fd);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once('exit', () => {
        for (const destination of unwritten) {
          destination.sync = true;
          destination.flushSync();
        }
      });
    }
  }

  /** Bytes dropped: batches beyond `maxQueuedBytes`, and what failed writes left unwritten. */
  get droppedBytes(): number {
    return this.#dropped;
  }

  write(text: string): boolean {
    const bytes = Buffer.from(text, 'utf8');
    this.#enqueue({ buffer: bytes, length: bytes.length, offset: 0, reusable: false });
    return true;
  }

  writeBuffer(buffer: Buffer, length: number): Buffer {
    if (length > 0) this.#enqueue({ buffer, length, offset: 0, reusable: true });
    else this.#recycle(buffer);
    const next = this.#spare.pop();
    return next !== undefined && next.length >= buffer.length ? next : Buffer.allocUnsafeSlow(buffer.length);
  }

  /** Resolves once everything given so far is written (at once when nothing waits). */
  whenWritten(): Promise<void> {
    if (this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  flushSync(): void {
    // A write already handed to the thread pool finishes there: it is left alone rather than
    // written twice. Everything queued behind it is written now.
    const from = this.#writing ? 1 : 0;
    const rest = this.#queue.splice(from);
    for (const chunk of rest) {
      this.#queuedBytes -= chunk.length - chunk.offset;
      this.#writeSync(chunk);
    }
  }

  #enqueue(chunk: Chunk): void {
    if (this.sync || this.#file) {
      this.flushSync();
      this.#writeSync(chunk);
      if (chunk.reusable) this.#recycle(chunk.buffer);
      return;
    }
    if (this.#queuedBytes + chunk.length > this.#maxQueuedBytes) {
      this.#dropped += chunk.length;
      if (!this.#failing) {
        this.#failing = true;
        this.#onError(new Error(`access log: the destination is not keeping up; dropping batches beyond ${this.#maxQueuedBytes} queued bytes`));
      }
      if (chunk.reusable) this.#recycle(chunk.buffer);
      return;
    }
    this.#queue.push(chunk);
    this.#queuedBytes += chunk.length;
    unwritten.add(this);
    if (!this.#writing) this.#next();
  }

  #next(): void {
    const chunk = this.#queue[0];
    if (chunk === undefined) {
      this.#writing = false;
      unwritten.delete(this);
      for (const resolve of this.#idle.splice(0)) resolve();
      return;
    }
    this.#writing = true;
    this.#writer.write(this.#fd, chunk.buffer, chunk.offset, chunk.length - chunk.offset, null, this.#written);
  }

  readonly #written = (error: NodeJS.ErrnoException | null, written: number): void => {
    // The write out is always the queue's head: flushSync() leaves it in place.
    const chunk = this.#queue[0] as Chunk;
    if (error !== null) {
      if (error.code === 'EAGAIN') {
        // Nothing was written and nothing is out: flushSync() at exit would write this chunk.
        this.#writing = false;
        setTimeout(() => {
          if (!this.#writing) this.#next();
        }, EAGAIN_RETRY_MS).unref();
        return;
      }
      if (!this.#failing) {
        this.#failing = true;
        this.#onError(error);
      }
      this.#dropped += chunk.length - chunk.offset;
      this.#done(chunk);
      return;
    }
    this.#queuedBytes -= written;
    chunk.offset += written;
    if (chunk.offset < chunk.length) {
      this.#next();
      return;
    }
    this.#failing = false;
    this.#done(chunk);
  };

  #done(chunk: Chunk): void {
    this.#queue.shift();
    this.#queuedBytes -= chunk.length - chunk.offset;
    if (chunk.reusable) this.#recycle(chunk.buffer);
    this.#next();
  }

  #recycle(buffer: Buffer): void {
    if (this.#spare.length < SPARE_BUFFERS) this.#spare.push(buffer);
  }

  #writeSync(chunk: Chunk): void {
    let tries = 0;
    while (chunk.offset < chunk.length) {
      try {
        chunk.offset += this.#writer.writeSync(this.#fd, chunk.buffer, chunk.offset, chunk.length - chunk.offset);
      } catch (error) {
        // A full non-blocking pipe: wait a little, a bounded number of times (this runs at exit).
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN' && tries < 100) {
          tries += 1;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, EAGAIN_RETRY_MS);
          continue;
        }
        this.#dropped += chunk.length - chunk.offset;
        this.#onError(error instanceof Error ? error : new Error(String(error)));
        return;
      }
    }
  }
}

/** Whether `fd` is a regular file; a descriptor that cannot be examined (closed) is treated as not one, and its writes report the error. */
function isRegularFile(writer: FdWriter, fd: number): boolean {
  try {
    return writer.fstatSync(fd).isFile();
  } catch {
    return false;
  }
}
