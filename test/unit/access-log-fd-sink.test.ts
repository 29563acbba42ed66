import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { accessLabels, batched, fieldsFor, formatAccessLine } from '../../src/log/access-log.js';
import { FdSink } from '../../src/log/fd-sink.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'leeway-fd-sink-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A buffer from the sink filled with `text`, trimmed to it. */
function chunk(sink: FdSink, text: string): Buffer {
  const buffer = sink.take();
  const length = buffer.write(text);
  return buffer.subarray(0, length);
}

describe('FdSink: access lines written as encoded', () => {
  it('writes chunks in full and in order, and drain() waits for them', async () => {
    const file = join(tempDir(), 'access.log');
    const fd = openSync(file, 'w');
    try {
      const sink = new FdSink(fd, { size: 1024 });
      const expected: string[] = [];
      for (let i = 0; i < 50; i += 1) {
        const text = `${JSON.stringify({ n: i, pad: 'x'.repeat(i * 7) })}\n`;
        expected.push(text);
        sink.write(chunk(sink, text));
      }
      await sink.drain();
      expect(readFileSync(file, 'utf8')).toBe(expected.join(''));
    } finally {
      closeSync(fd);
    }
  });

  it('reuses a written buffer for the next chunk instead of allocating', async () => {
    const fd = openSync(join(tempDir(), 'access.log'), 'w');
    try {
      const sink = new FdSink(fd, { size: 512 });
      const first = sink.take();
      sink.write(first.subarray(0, first.write('one\n')));
      await sink.drain();
      expect(sink.take().buffer).toBe(first.buffer);
      // A Buffer the sink did not hand out is written but never handed out again.
      const foreign = Buffer.from('two\n');
      sink.write(foreign);
      await sink.drain();
      expect(sink.take().buffer).not.toBe(foreign.buffer);
    } finally {
      closeSync(fd);
    }
  });

  it('waits on a full non-blocking pipe (EAGAIN) and loses nothing', async () => {
    const fifo = join(tempDir(), 'pipe');
    execFileSync('mkfifo', [fifo]);
    // Read-write so opening does not wait for a reader; non-blocking so a full pipe says EAGAIN.
    const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    try {
      // Fill the pipe until the kernel refuses more.
      const filler = Buffer.alloc(4096, 0x2e);
      let filled = 0;
      for (;;) {
        try {
          filled += writeSync(fd, filler);
        } catch (error) {
          expect((error as NodeJS.ErrnoException).code).toBe('EAGAIN');
          break;
        }
      }
      const sink = new FdSink(fd, { size: 16 * 1024 });
      // Whole lines: the first chunk fills most of a 16 KiB buffer, the second is smaller.
      const first = 'line\n'.repeat(3276);
      const second = 'next\n'.repeat(1000);
      sink.write(chunk(sink, first));
      sink.write(chunk(sink, second));
      let drained = false;
      const done = sink.drain().then(() => {
        drained = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(drained).toBe(false);
      // Read everything: the filler first, then both chunks whole and in order.
      const read: Buffer[] = [];
      const deadline = Date.now() + 5_000;
      const wanted = filled + first.length + second.length;
      let total = 0;
      while (total < wanted && Date.now() < deadline) {
        const buffer = Buffer.alloc(65536);
        let n = 0;
        try {
          n = readSync(fd, buffer);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
        }
        read.push(buffer.subarray(0, n));
        total += n;
        // Nothing to read yet: let the sink's retry run.
        if (n === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await done;
      const all = Buffer.concat(read);
      expect(all.length).toBe(wanted);
      expect(all.subarray(0, filled).every((byte) => byte === 0x2e)).toBe(true);
      expect(all.subarray(filled).toString()).toBe(`${first}${second}`);
    } finally {
      closeSync(fd);
    }
  });

  it('reports a failing descriptor once, drops what follows and keeps going', async () => {
    const fd = openSync(join(tempDir(), 'access.log'), 'w');
    closeSync(fd);
    const errors: Error[] = [];
    const sink = new FdSink(fd, { size: 256, onError: (error) => void errors.push(error) });
    sink.write(chunk(sink, 'a\n'));
    sink.write(chunk(sink, 'b\n'));
    await sink.drain();
    sink.write(chunk(sink, 'c\n'));
    await sink.drain();
    sink.flushSync();
    expect(errors).toHaveLength(1);
    expect((errors[0] as NodeJS.ErrnoException).code).toBe('EBADF');
  });

  it('flushSync() writes what waits behind the write in flight, so the process can exit', async () => {
    const file = join(tempDir(), 'access.log');
    const fd = openSync(file, 'a');
    try {
      const sink = new FdSink(fd, { size: 256 });
      sink.write(chunk(sink, 'first\n'));
      sink.write(chunk(sink, 'second\n'));
      sink.write(chunk(sink, 'third\n'));
      sink.flushSync();
      // 'first' is still with its asynchronous write (which may or may not have landed yet); the
      // two after it are in the file already, in order.
      expect(readFileSync(file, 'utf8')).toContain('second\nthird\n');
      await sink.drain();
      // And once that write completes nothing is lost or written twice.
      expect(readFileSync(file, 'utf8').split('\n').filter((line) => line !== '').sort()).toEqual(['first', 'second', 'third']);
    } finally {
      closeSync(fd);
    }
  });

  it('carries LineBatch request lines byte for byte as the string destination does', async () => {
    const file = join(tempDir(), 'access.log');
    const fd = openSync(file, 'w');
    const strings: string[] = [];
    try {
      const viaSink = batched(new FdSink(fd, { size: 4096 }));
      const viaString = batched({ write: (text: string) => void strings.push(text) });
      const labels = accessLabels('social-leisure', 'facebook', 'allow');
      const real = Date.now;
      Date.now = () => Date.parse('2026-06-15T08:00:59.042Z');
      try {
        for (let i = 0; i < 500; i += 1) {
          for (const batch of [viaSink, viaString]) batch.writeRequest(labels, 200, i, i * 3, i % 11, i % 2 === 0 ? 'http' : 'https', undefined);
        }
      } finally {
        Date.now = real;
      }
      viaSink.flush();
      viaString.flush();
      // The batch's own sink drains on the event loop: wait until the file holds every line.
      const expected = strings.join('');
      const deadline = Date.now() + 5_000;
      while (readFileSync(file, 'utf8').length < expected.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(readFileSync(file, 'utf8')).toBe(expected);
      const first = formatAccessLine({ category: 'social-leisure', site: 'facebook', action: 'allow', status: 200, bytesIn: 0, bytesOut: 0, durationMs: 0, kind: 'http' }, fieldsFor('anonymous'));
      expect(expected.split('\n')[0]).toBe(first.replace(/"time":"[^"]*"/, '"time":"2026-06-15T08:00:59.042Z"').trimEnd());
    } finally {
      closeSync(fd);
    }
  });
});

describe('FdSink at process exit', () => {
  it('writes the lines still held when the process exits at once', () => {
    const file = join(tempDir(), 'access.log');
    const source = new URL('../../src/log/', import.meta.url).pathname;
    const script = `
      import { openSync } from 'node:fs';
      import { accessLabels, batched } from '${source}access-log.ts';
      import { FdSink } from '${source}fd-sink.ts';
      const batch = batched(new FdSink(openSync(process.argv[1], 'a'), { size: 4096 }));
      const labels = accessLabels('social-leisure', 'facebook', 'allow');
      for (let i = 0; i < 100; i += 1) batch.writeRequest(labels, 200, i, 0, 0, 'http', undefined);
      process.exit(0);
    `;
    execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, file], { stdio: ['ignore', 'ignore', 'inherit'] });
    const lines = readFileSync(file, 'utf8').split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as { bytesIn: number });
    expect(lines.map((line) => line.bytesIn).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });
});
