/**
 * Where batched access lines go when the proxy owns a file descriptor for them (`leeway start`:
 * stdout). LineBatch encodes lines into a buffer it took from here and hands the filled part
 * back; the bytes go out with fs.write as they are and the buffer comes back for reuse. Through
 * pino's destination each batch was turned into a string, measured and copied three more times
 * (the string, its UTF-8 for the write, a Buffer of it when the write returned): on a loaded
 * proxy the copies cost more than encoding the lines, and each touched memory the proxy's own
 * work then had to fetch again (issue 5: accounting under 5% of forwarding).
 *
 * Writes never block the event loop (they run on libuv's thread pool, like pino's asynchronous
 * destination), go out in order and in full (short writes resumed, EAGAIN on a full
 * non-blocking pipe retried), and a failing descriptor is reported once, its lines dropped, so
 * a broken log never stops the proxy. drain() waits until everything handed over is written;
 * at process exit (flushSync) chunks not yet started, and any handed over after, are written
 * synchronously.
 */
import fs from 'node:fs';

/** What LineBatch needs of a sink that takes Buffers. */
export interface ChunkSink {
  /** A buffer to encode into, `size` bytes. */
  take(): Buffer;
  /** Write `chunk` (the filled start of a buffer from take(), or any Buffer); the sink owns it from now on. */
  write(chunk: Buffer): void;
  /** Write what is waiting synchronously, and every chunk from now on (process exit). */
  flushSync(): void;
}

/** A full pipe is retried after this long (its reader is behind). */
const RETRY_MS = 10;
/** Buffers kept for reuse once written: two is enough for one being written while one fills. */
const KEPT_FREE = 4;

export class FdSink implements ChunkSink {
  readonly #fd: number;
  readonly size: number;
  readonly #onError: (error: Error) => void;
  readonly #queue: Buffer[] = [];
  #writing = false;
  readonly #free: Buffer[] = [];
  /** The ArrayBuffers of buffers take() gave: only those are reused. */
  readonly #ours = new WeakSet<ArrayBufferLike>();
  #failed = false;
  /** Set at process exit: no asynchronous write would complete, so every write is synchronous. */
  #sync = false;
  #drained: (() => void)[] = [];

  constructor(fd: number, options: { size?: number; onError?: (error: Error) => void } = {}) {
    this.#fd = fd;
    this.size = options.size ?? 16 * 1024;
    this.#onError = options.onError ?? (() => undefined);
  }

  take(): Buffer {
    // Each buffer has an ArrayBuffer of its own, so a written chunk gives its whole buffer back.
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    const buffer = Buffer.allocUnsafeSlow(this.size);
    this.#ours.add(buffer.buffer);
    return buffer;
  }

  write(chunk: Buffer): void {
    if (this.#failed) return this.#release(chunk);
    if (this.#sync) return this.#writeSync(chunk);
    this.#queue.push(chunk);
    if (!this.#writing) this.#next();
  }

  /** Resolves once every chunk handed over so far is written (or dropped after a failure). */
  drain(): Promise<void> {
    if (!this.#writing && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  flushSync(): void {
    this.#sync = true;
    // The chunk being written asynchronously stays with its write; those after it go now, in order.
    for (const chunk of this.#queue.splice(this.#writing ? 1 : 0)) this.#writeSync(chunk);
  }

  #writeSync(chunk: Buffer): void {
    let offset = 0;
    // A full non-blocking pipe: try again, a bounded number of times (the process is exiting).
    for (let tries = 0; offset < chunk.length && tries < 1000 && !this.#failed; tries += 1) {
      try {
        offset += fs.writeSync(this.#fd, chunk, offset, chunk.length - offset);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') this.#fail(error);
      }
    }
  }

  #next(): void {
    const chunk = this.#queue[0];
    if (chunk === undefined) {
      this.#writing = false;
      for (const resolve of this.#drained.splice(0)) resolve();
      return;
    }
    this.#writing = true;
    this.#writeFrom(chunk, 0);
  }

  #writeFrom(chunk: Buffer, offset: number): void {
    fs.write(this.#fd, chunk, offset, chunk.length - offset, null, (error, written) => {
      if (error !== null) {
        if (error.code === 'EAGAIN') {
          setTimeout(() => this.#writeFrom(chunk, offset), RETRY_MS);
          return;
        }
        this.#fail(error);
        for (const dropped of this.#queue.splice(0)) this.#release(dropped);
        this.#writing = false;
        for (const resolve of this.#drained.splice(0)) resolve();
        return;
      }
      if (offset + written < chunk.length) return this.#writeFrom(chunk, offset + written);
      this.#queue.shift();
      this.#release(chunk);
      this.#next();
    });
  }

  #release(chunk: Buffer): void {
    if (this.#free.length < KEPT_FREE && this.#ours.has(chunk.buffer)) this.#free.push(Buffer.from(chunk.buffer, 0, this.size));
  }

  #fail(error: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#onError(error instanceof Error ? error : new Error(String(error)));
  }
}
