import { describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FdDestination, isBufferDestination } from '../../src/log/fd-destination.js';
import type { FdWriter } from '../../src/log/fd-destination.js';
import { accessLabels, batched } from '../../src/log/access-log.js';

function tempFile(): { file: string; fd: number; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'leeway-fd-destination-'));
  const file = join(dir, 'access.log');
  const fd = openSync(file, 'w');
  return { file, fd, done: () => { closeSync(fd); rmSync(dir, { recursive: true, force: true }); } };
}

/** Waits (bounded) until `check` holds. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !check(); i += 1) await new Promise((resolve) => setTimeout(resolve, 5));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
}

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');

/** A writer over an in-memory sink, whose write misbehaves as the test says. */
function scriptedWriter(behave: (call: number, length: number) => number | NodeJS.ErrnoException | 'stall'): { writer: FdWriter; out: Buffer[]; calls: () => number } {
  const out: Buffer[] = [];
  let calls = 0;
  const writer: FdWriter = {
    write(_fd, buffer, offset, length, _position, callback) {
      const how = behave(calls, length);
      calls += 1;
      if (how === 'stall') return;
      setImmediate(() => {
        if (typeof how === 'number') {
          out.push(Buffer.from(buffer.subarray(offset, offset + how)));
          callback(null, how);
        } else {
          callback(how, 0);
        }
      });
    },
    writeSync(_fd, buffer, offset, length) {
      out.push(Buffer.from(buffer.subarray(offset, offset + length)));
      return length;
    },
    // A pipe, say: the asynchronous path.
    fstatSync: () => ({ isFile: () => false }),
  };
  return { writer, out, calls: () => calls };
}

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code });

describe('FdDestination', () => {
  it('writes handed buffers and strings to a regular file at once, in the order given, reusing the buffers', () => {
    const { file, fd, done } = tempFile();
    try {
      const destination = new FdDestination(fd);
      expect(isBufferDestination(destination)).toBe(true);
      let expected = '';
      let buffer: Buffer = Buffer.alloc(64);
      const handed = new Set<Buffer>();
      for (let i = 0; i < 50; i += 1) {
        const text = `line ${i}\n`;
        buffer.write(text, 0);
        expected += text;
        handed.add(buffer);
        buffer = destination.writeBuffer(buffer, Buffer.byteLength(text));
        if (i % 10 === 0) {
          destination.write(`string ${i}\n`);
          expected += `string ${i}\n`;
        }
        // Synchronously: a file is written before the call returns.
        expect(readFileSync(file, 'utf8')).toBe(expected);
      }
      // A written buffer comes back for the next batch: no new one per batch.
      expect(handed.size).toBe(1);
    } finally {
      done();
    }
  });

  it('continues partial writes where they stopped and retries EAGAIN, keeping every byte in order', async () => {
    const { writer, out } = scriptedWriter((call, length) => (call % 3 === 1 ? errno('EAGAIN') : Math.max(1, Math.floor(length / 3))));
    const destination = new FdDestination(99, { writer });
    const texts = Array.from({ length: 20 }, (_, i) => `batch ${i}: ${'x'.repeat(i * 7)}\n`);
    let buffer: Buffer = Buffer.alloc(256);
    const queued = new Set<Buffer>();
    for (const text of texts) {
      buffer.write(text, 0);
      queued.add(buffer);
      const next = destination.writeBuffer(buffer, Buffer.byteLength(text));
      // The next batch is encoded into `next` while these wait: it must be none of them.
      expect(queued.has(next)).toBe(false);
      buffer = next;
    }
    const expected = texts.join('');
    await until(() => Buffer.concat(out).length === expected.length, 'partial writes to finish');
    expect(Buffer.concat(out).toString()).toBe(expected);
    expect(destination.droppedBytes).toBe(0);
    // Once written, a buffer is handed back for a later batch rather than a new one made.
    expect(queued.has(destination.writeBuffer(Buffer.from('last\n'), 5))).toBe(true);
  });

  it('tells when everything given so far is written', async () => {
    const { writer, out } = scriptedWriter((_call, length) => Math.ceil(length / 2));
    const destination = new FdDestination(99, { writer });
    await destination.whenWritten();
    for (const text of ['alpha\n', 'beta\n', 'gamma\n']) destination.write(text);
    expect(Buffer.concat(out).toString()).toBe('');
    await destination.whenWritten();
    expect(Buffer.concat(out).toString()).toBe('alpha\nbeta\ngamma\n');
  });

  it('reports a failed write once, counts its bytes as dropped and goes on with the next batches', async () => {
    const errors: Error[] = [];
    const { writer, out } = scriptedWriter((call, length) => (call === 1 || call === 2 ? errno('EIO') : length));
    const destination = new FdDestination(99, { writer, onError: (error) => errors.push(error) });
    for (const text of ['one\n', 'two\n', 'three\n', 'four\n']) destination.write(text);
    await until(() => Buffer.concat(out).toString() === 'one\nfour\n', 'the batches after the failures');
    expect(errors.map((error) => (error as NodeJS.ErrnoException).code)).toEqual(['EIO']);
    expect(destination.droppedBytes).toBe(bytes('two\nthree\n').length);
  });

  it('bounds what waits for a stalled reader: whole batches beyond the limit are dropped and reported once', () => {
    const errors: Error[] = [];
    const { writer, calls } = scriptedWriter(() => 'stall');
    const destination = new FdDestination(99, { writer, maxQueuedBytes: 1000, onError: (error) => errors.push(error) });
    for (let i = 0; i < 30; i += 1) destination.write(`${'y'.repeat(99)}\n`);
    // Ten batches of 100 bytes fit; the other twenty are dropped.
    expect(destination.droppedBytes).toBe(2000);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(/not keeping up/);
    expect(calls()).toBe(1);
  });

  it('writes what is queued synchronously once switched to sync (at exit), leaving the write in flight alone', () => {
    const { writer, out } = scriptedWriter(() => 'stall');
    const destination = new FdDestination(99, { writer });
    destination.write('first\n'); // handed to the (stalled) asynchronous write
    destination.write('second\n');
    destination.sync = true;
    destination.write('third\n');
    expect(Buffer.concat(out).toString()).toBe('second\nthird\n');
  });

  it('reports, without throwing, writes to a descriptor that is not open', async () => {
    const errors: Error[] = [];
    // Far above anything this process opens (a closed one could be reused by the time it is written).
    const destination = new FdDestination(65_000, { onError: (error) => errors.push(error) });
    expect(destination.write('lost\n')).toBe(true);
    await until(() => errors.length > 0, 'the error');
    expect((errors[0] as NodeJS.ErrnoException).code).toBe('EBADF');
    expect(destination.droppedBytes).toBe(5);
  });

  it('at exit writes a batch that is waiting to retry after EAGAIN, since nothing of it is out', () => {
    const { writer, out } = scriptedWriter(() => errno('EAGAIN'));
    const destination = new FdDestination(99, { writer });
    destination.write('retrying\n');
    return new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      destination.sync = true;
      destination.flushSync();
      expect(Buffer.concat(out).toString()).toBe('retrying\n');
    });
  });

  it('refuses something that is not a file descriptor', () => {
    expect(() => new FdDestination(-1)).toThrow(/not a file descriptor/);
    expect(() => new FdDestination(1.5)).toThrow(/not a file descriptor/);
  });
});

describe('LineBatch on a destination that takes buffers', () => {
  it('writes the same bytes as on a string destination, over many batches, to a file and to a pipe', async () => {
    const { file, fd, done } = tempFile();
    try {
      const strings: string[] = [];
      const small = { maxBytes: 64 * 1024 };
      const byString = batched({ write: (chunk: string) => void strings.push(chunk) }, small);
      const byBuffer = batched(new FdDestination(fd), small);
      // The asynchronous path, whose buffers change hands at every batch, with partial writes.
      const pipe = scriptedWriter((_call, length) => Math.ceil(length / 2));
      const byPipe = batched(new FdDestination(99, { writer: pipe.writer }), small);
      const labels = accessLabels('social-leisure', 'facebook', 'allow');
      const real = Date.now;
      Date.now = () => Date.parse('2026-06-15T08:00:59.042Z');
      try {
        // About 190 bytes a line: a dozen batches of 64 KiB, and lines of every length of number.
        for (let i = 0; i < 4000; i += 1) {
          for (const batch of [byString, byBuffer, byPipe]) batch.writeRequest(labels, 200, i, i * 1013, i % 97, i % 2 === 0 ? 'http' : 'https', undefined);
          if (i % 1000 === 999) for (const batch of [byString, byBuffer, byPipe]) batch.write(`{"marker":${i}}\n`);
        }
      } finally {
        Date.now = real;
      }
      byString.flush();
      byBuffer.flush();
      byPipe.flush();
      const expected = strings.join('');
      expect(expected.split('\n')).toHaveLength(4005);
      expect(readFileSync(file, 'utf8')).toBe(expected);
      await until(() => Buffer.concat(pipe.out).length === Buffer.byteLength(expected), 'the pipe');
      expect(Buffer.concat(pipe.out).toString()).toBe(expected);
    } finally {
      done();
    }
  });
});
