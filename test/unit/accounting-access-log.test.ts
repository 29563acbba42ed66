import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ACCESS_LOG_MAX_BYTES, ACCESS_LOG_MAX_DELAY_MS, accessLabels, batched, createAccessLog, fieldsFor, formatAccessLine, pickAccessFields } from '../../src/log/access-log.js';
import type { AccessEntry } from '../../src/log/access-log.js';
import { createLogger } from '../../src/log/logger.js';
import type { AccessLogMode } from '../../src/policy/types.js';

const entry: AccessEntry = {
  category: 'social-leisure', site: 'facebook', action: 'allow', status: 200,
  bytesIn: 12, bytesOut: 3456, durationMs: 7, kind: 'https', pseudonym: 'PSEUDO123',
};

function capture(mode: () => AccessLogMode) {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });
  return { lines, log: createAccessLog({ mode, logger }) };
}

const ENVELOPE = ['level', 'time', 'service', 'log', 'msg'];

describe('access log modes', () => {
  const cases: { mode: AccessLogMode; accessLines: number; keys: string[]; warning: boolean }[] = [
    { mode: 'aggregate-only', accessLines: 0, keys: [], warning: false },
    { mode: 'anonymous', accessLines: 1, keys: ['category', 'site', 'action', 'status', 'bytesIn', 'bytesOut', 'durationMs', 'kind'], warning: false },
    { mode: 'pseudonymous', accessLines: 1, keys: ['category', 'site', 'action', 'status', 'bytesIn', 'bytesOut', 'durationMs', 'kind', 'pseudonym'], warning: true },
  ];
  it.each(cases)('$mode', ({ mode, accessLines, keys, warning }) => {
    const { lines, log } = capture(() => mode);
    log.write(entry);
    const access = lines.filter((line) => line.msg === 'access');
    const warnings = lines.filter((line) => line.level === 'warn');
    expect(access).toHaveLength(accessLines);
    expect(warnings).toHaveLength(warning ? 1 : 0);
    for (const line of access) {
      expect(Object.keys(line).sort()).toEqual([...ENVELOPE, ...keys].sort());
      expect(line.site).toBe('facebook');
      expect(typeof line.time).toBe('string');
    }
  });

  it('copies only allowed fields, whatever else the object carries', () => {
    const sneaky = { ...entry, user: 'alice', clientIp: '127.0.0.5', path: '/secret', host: 'www.facebook.test' } as AccessEntry;
    const picked = pickAccessFields(sneaky, fieldsFor('pseudonymous'));
    expect(Object.keys(picked).sort()).toEqual(['action', 'bytesIn', 'bytesOut', 'category', 'durationMs', 'kind', 'pseudonym', 'site', 'status']);
    const { lines, log } = capture(() => 'anonymous');
    log.write(sneaky);
    const text = JSON.stringify(lines);
    for (const secret of ['alice', '127.0.0.5', '/secret', 'www.facebook.test', 'PSEUDO123']) expect(text).not.toContain(secret);
  });

  it('gives a request writer for the mode in force when asked, none for aggregate-only', () => {
    let mode: AccessLogMode = 'aggregate-only';
    const { lines, log } = capture(() => mode);
    const labels = accessLabels(entry.category, entry.site, entry.action);
    expect(log.requestWriter()).toBeUndefined();
    mode = 'anonymous';
    const anonymous = log.requestWriter();
    mode = 'pseudonymous';
    // A writer keeps the mode it was made for: the caller asks again at its next batch.
    anonymous?.(labels, 200, 1, 2, 3, 'http', 'PSEUDO123');
    log.requestWriter()?.(labels, 200, 4, 5, 6, 'https', 'PSEUDO123');
    const access = lines.filter((line) => line.msg === 'access');
    expect(access.map((line) => [line.bytesIn, line.pseudonym])).toEqual([[1, undefined], [4, 'PSEUDO123']]);
    expect(lines.filter((line) => line.level === 'warn')).toHaveLength(1);
  });

  it('follows a policy reload into pseudonymous mode with a warning', () => {
    let mode: AccessLogMode = 'anonymous';
    const { lines, log } = capture(() => mode);
    log.write(entry);
    mode = 'pseudonymous';
    log.write(entry);
    log.write(entry);
    expect(lines.filter((line) => line.level === 'warn')).toHaveLength(1);
    expect(lines.filter((line) => line.msg === 'access').map((line) => line.pseudonym)).toEqual([undefined, 'PSEUDO123', 'PSEUDO123']);
    expect(log.mode).toBe('pseudonymous');
  });
});

describe('access log on its own destination', () => {
  it('writes access lines there in batches, and warnings to the main logger', async () => {
    const main: Record<string, unknown>[] = [];
    const writes: string[] = [];
    const logger = createLogger({ destination: { write: (line: string) => void main.push(JSON.parse(line) as Record<string, unknown>) } });
    const log = createAccessLog({ mode: () => 'pseudonymous', logger, destination: { write: (chunk: string) => void writes.push(chunk) } });
    log.write(entry);
    log.write(entry);
    log.write(entry);
    expect(writes).toHaveLength(0);
    await new Promise((resolve) => setTimeout(resolve, ACCESS_LOG_MAX_DELAY_MS + 50));
    expect(main.map((line) => line.level)).toEqual(['warn']);
    expect(writes).toHaveLength(1);
    const own = (writes[0] ?? '').split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(own).toHaveLength(3);
    expect(own[0]).toMatchObject({ msg: 'access', log: 'access', site: 'facebook', pseudonym: 'PSEUDO123', service: 'leeway' });
  });

  it.each(['anonymous', 'pseudonymous'] as const)('formats %s lines exactly as pino does', (mode) => {
    const viaPino: string[] = [];
    const logger = createLogger({ destination: { write: (line: string) => void viaPino.push(line) } });
    logger.child({ log: 'access' }).info(pickAccessFields(entry, fieldsFor(mode)), 'access');
    const direct = formatAccessLine(entry, fieldsFor(mode));
    const withoutTime = (line: string): string => line.replace(/"time":"[^"]*"/, '"time":""');
    expect(withoutTime(direct)).toBe(withoutTime(viaPino[0] ?? ''));
    // Odd values stay valid JSON.
    const odd = formatAccessLine({ ...entry, site: 'a"b\\c', durationMs: Number.NaN }, fieldsFor(mode));
    expect(JSON.parse(odd)).toMatchObject({ site: 'a"b\\c', durationMs: null });
  });

  const requestCases: { mode: AccessLogMode; entry: AccessEntry }[] = [
    { mode: 'anonymous', entry },
    { mode: 'pseudonymous', entry },
    { mode: 'pseudonymous', entry: { ...entry, category: 'caf\u00e9 "x"', site: 'a\\b', action: 'free text', kind: 'odd kind', pseudonym: 'p"q', durationMs: Number.NaN, bytesIn: Number.POSITIVE_INFINITY } },
    { mode: 'anonymous', entry: { ...entry, status: 0, bytesIn: 1_234_567_890_123, bytesOut: -5, durationMs: 2.5 } },
    { mode: 'anonymous', entry: { ...entry, status: 10, bytesIn: 1e21, bytesOut: 999_999_999_999_999, durationMs: Number.NEGATIVE_INFINITY } },
    { mode: 'aggregate-only', entry },
  ];
  it.each(requestCases)('writeRequest writes what write() does, in $mode mode, on a destination and through the logger', ({ mode, entry: e }) => {
    const viaDestination = (call: (log: ReturnType<typeof createAccessLog>) => void): string[] => {
      const writes: string[] = [];
      const log = createAccessLog({ mode: () => mode, logger: createLogger({ destination: { write: () => undefined } }), destination: { write: (chunk: string) => void writes.push(chunk) } });
      call(log);
      log.flush();
      return writes;
    };
    const viaLogger = (call: (log: ReturnType<typeof createAccessLog>) => void): string[] => {
      const lines: string[] = [];
      call(createAccessLog({ mode: () => mode, logger: createLogger({ destination: { write: (line: string) => void lines.push(line) } }) }));
      return lines.filter((line) => line.includes('"msg":"access"'));
    };
    const byEntry = (log: ReturnType<typeof createAccessLog>): void => log.write(e);
    const byRequest = (log: ReturnType<typeof createAccessLog>): void =>
      log.requestWriter()?.(accessLabels(e.category, e.site, e.action), e.status, e.bytesIn, e.bytesOut, e.durationMs, e.kind, e.pseudonym ?? '');
    const withoutTime = (lines: string[]): string[] => lines.map((line) => line.replace(/"time":"[^"]*"/g, '"time":""'));
    const direct = withoutTime(viaDestination(byRequest));
    expect(direct).toEqual(withoutTime(viaDestination(byEntry)));
    expect(withoutTime(viaLogger(byRequest))).toEqual(withoutTime(viaLogger(byEntry)));
    // And pino's own serializer agrees with the line built by hand.
    expect(direct).toEqual(withoutTime(viaLogger(byEntry)));
    expect(direct).toHaveLength(mode === 'aggregate-only' ? 0 : 1);
  });

  it('splits request lines between chunks only at line ends, in order, losing none', () => {
    const writes: string[] = [];
    const log = createAccessLog({ mode: () => 'pseudonymous', logger: createLogger({ destination: { write: () => undefined } }), destination: { write: (chunk: string) => void writes.push(chunk) } });
    const labels = accessLabels('social-leisure', 'facebook', 'allow');
    // About 230 bytes a line: three batches of ACCESS_LOG_MAX_BYTES and a partial one.
    const count = Math.ceil((3.5 * ACCESS_LOG_MAX_BYTES) / 230);
    const write = log.requestWriter();
    for (let i = 0; i < count; i += 1) write?.(labels, 200, i, i * 7, i % 13, i % 2 === 0 ? 'http' : 'https', `P${i}`);
    log.flush();
    expect(writes.length).toBeGreaterThan(2);
    for (const chunk of writes) expect(chunk.endsWith('\n')).toBe(true);
    const lines = writes.join('').split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((line) => line.bytesIn)).toEqual(Array.from({ length: count }, (_, i) => i));
    const last = count - 1;
    expect(lines[last]).toMatchObject({ bytesOut: last * 7, durationMs: last % 13, kind: last % 2 === 0 ? 'http' : 'https', pseudonym: `P${last}` });
  });

  it('keeps request lines and other lines in the order written', () => {
    const writes: string[] = [];
    const batch = batched({ write: (chunk: string) => void writes.push(chunk) });
    const labels = accessLabels('social-leisure', 'facebook', 'allow');
    batch.writeRequest(labels, 200, 1, 0, 0, 'http', undefined);
    batch.write('{"between":true}\n');
    batch.writeRequest(labels, 200, 2, 0, 0, 'http', undefined);
    batch.flush();
    const lines = writes.join('').split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((line) => line.bytesIn ?? line.between)).toEqual([1, true, 2]);
  });

  it('writes each line\'s time as pino does, to the millisecond, across the end of a second', () => {
    const writes: string[] = [];
    const batch = batched({ write: (chunk: string) => void writes.push(chunk) });
    const labels = accessLabels('social-leisure', 'facebook', 'allow');
    const real = Date.now;
    // Each number of leading zeros in the milliseconds, and the next second.
    // Then a clock set back, to the second before and within it, and forward again.
    const times = [
      '2026-06-15T08:00:59.000Z', '2026-06-15T08:00:59.007Z', '2026-06-15T08:00:59.042Z', '2026-06-15T08:00:59.999Z', '2026-06-15T08:01:00.100Z',
      '2026-06-15T08:00:58.500Z', '2026-06-15T08:00:58.499Z', '2026-06-15T08:01:00.000Z', '1969-12-31T23:59:59.998Z',
    ];
    try {
      for (const time of times) {
        Date.now = () => Date.parse(time);
        batch.writeRequest(labels, 200, 1, 2, 3, 'https', undefined);
      }
    } finally {
      Date.now = real;
    }
    batch.flush();
    const lines = writes.join('').split('\n').filter((line) => line !== '');
    expect(lines.map((line) => (JSON.parse(line) as { time: string }).time)).toEqual(times);
    const expected = formatAccessLine({ category: 'social-leisure', site: 'facebook', action: 'allow', status: 200, bytesIn: 1, bytesOut: 2, durationMs: 3, kind: 'https' }, fieldsFor('anonymous'));
    expect(lines[0]).toBe(expected.replace(/"time":"[^"]*"/, `"time":"${times[0]}"`).trimEnd());
  });

  it('writes a batch of the default size, ACCESS_LOG_MAX_BYTES, once full', () => {
    const writes: string[] = [];
    const batch = batched({ write: (chunk: string) => void writes.push(chunk) });
    const line = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < ACCESS_LOG_MAX_BYTES / 1024 - 1; i += 1) batch.write(line);
    expect(writes).toHaveLength(0);
    batch.write(line);
    expect(writes.map((chunk) => chunk.length)).toEqual([ACCESS_LOG_MAX_BYTES]);
  });

  it('batches until its size (64 KiB here) or an explicit flush', () => {
    const writes: string[] = [];
    const batch = batched({ write: (chunk: string) => void writes.push(chunk) }, { maxBytes: 64 * 1024 });
    const line = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 63; i += 1) batch.write(line);
    expect(writes).toHaveLength(0);
    batch.write(line);
    expect(writes).toHaveLength(1);
    expect(writes[0]).toHaveLength(64 * 1024);
    batch.write('last\n');
    batch.flush();
    expect(writes).toEqual([expect.any(String), 'last\n']);
    batch.flush();
    expect(writes).toHaveLength(2);
  });
});

describe('access log at process exit', () => {
  // As `leeway start` writes them (FdDestination on stdout), and on pino's asynchronous
  // destination (SonicBoom), which embedders may pass: 1,000 lines, several batches (of 64 KiB
  // here) and a partial one at exit.
  // With pino's destination a batch already out in the thread pool when the process exits may
  // land after the lines written at exit (SonicBoom's flushSync leaves it alone): every line
  // is there, in order within each batch. FdDestination writes a regular file synchronously.
  const destinations = {
    'a file descriptor (FdDestination, as leeway start writes)': `
      import { FdDestination } from '${new URL('../../src/log/fd-destination.ts', import.meta.url).pathname}';
      import { openSync } from 'node:fs';
      const destination = new FdDestination(openSync(process.argv[1], 'w'));
      const ready = (go) => go();`,
    "pino's asynchronous destination": `
      import pino from 'pino';
      const destination = pino.destination({ dest: process.argv[1], sync: false });
      const ready = (go) => destination.once('ready', go);`,
  };
  for (const [name, setup] of Object.entries(destinations)) {
    it(`writes the lines still held in a batch when the process exits at once, on ${name}`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'leeway-access-exit-'));
      try {
        const file = join(dir, 'access.log');
        const source = new URL('../../src/log/access-log.ts', import.meta.url).pathname;
        const script = `
          import { accessLabels, batched } from '${source}';
          ${setup}
          ready(() => {
            const batch = batched(destination, { maxBytes: 64 * 1024 });
            const labels = accessLabels('social-leisure', 'facebook', 'allow');
            for (let i = 0; i < 1000; i += 1) batch.writeRequest(labels, 200, i, 0, 0, 'http', undefined);
            process.exit(0);
          });
        `;
        execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, file], { stdio: ['ignore', 'ignore', 'inherit'] });
        const lines = readFileSync(file, 'utf8').split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as { bytesIn: number });
        const written = lines.map((line) => line.bytesIn);
        const all = Array.from({ length: 1000 }, (_, i) => i);
        if (name.startsWith('a file descriptor')) expect(written).toEqual(all);
        else expect([...written].sort((a, b) => a - b)).toEqual(all);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
