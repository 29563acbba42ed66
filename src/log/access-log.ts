/**
 * Per-request access log lines (issue 5, item 4), in the mode the policy sets:
 * - `aggregate-only`: no per-request lines at all;
 * - `anonymous` (default): time, category, site, action, status, bytes, duration;
 * - `pseudonymous`: the same plus the daily pseudonym, announced by a warning line.
 * A line is built only from an explicit allow-list of fields, copied one by one, so no other
 * property of whatever the caller holds (user, client address, host, path, query) can slip in.
 * Site and category are the policy's names, `other` otherwise: the host is never written.
 */
import type { DestinationStream } from 'pino';
import type { AccessLogMode } from '../policy/types.js';
import type { Logger } from './logger.js';
import { isBufferDestination } from './fd-destination.js';

/** Everything an access line may ever carry. */
export interface AccessEntry {
  readonly category: string;
  readonly site: string;
  readonly action: string;
  readonly status: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationMs: number;
  readonly kind: string;
  readonly pseudonym?: string;
}

export type AccessField = keyof AccessEntry;

export const ANONYMOUS_FIELDS: readonly AccessField[] = Object.freeze([
  'category', 'site', 'action', 'status', 'bytesIn', 'bytesOut', 'durationMs', 'kind',
] as const);
export const PSEUDONYMOUS_FIELDS: readonly AccessField[] = Object.freeze([...ANONYMOUS_FIELDS, 'pseudonym'] as const);

/** The fields a mode writes; none for aggregate-only. */
export function fieldsFor(mode: AccessLogMode): readonly AccessField[] {
  switch (mode) {
    case 'aggregate-only': return [];
    case 'anonymous': return ANONYMOUS_FIELDS;
    case 'pseudonymous': return PSEUDONYMOUS_FIELDS;
  }
}

/** Copy only the allowed fields; the time is pino's own `time`. */
export function pickAccessFields(entry: AccessEntry, fields: readonly AccessField[]): Record<string, string | number> {
  const line: Record<string, string | number> = {};
  for (const field of fields) {
    const value = entry[field];
    if (value !== undefined) line[field] = value;
  }
  return line;
}

/** Longest an access line waits in memory before it is written. */
export const ACCESS_LOG_MAX_DELAY_MS = 1_000;
/** A batch is written once it holds this much (about 5,500 anonymous lines). */
export const ACCESS_LOG_MAX_BYTES = 1024 * 1024;

export interface LineBatchOptions {
  /** Default ACCESS_LOG_MAX_BYTES. */
  readonly maxBytes?: number;
  /** Default ACCESS_LOG_MAX_DELAY_MS. */
  readonly maxDelayMs?: number;
}

const pendingBatches = new Set<() => void>();
let exitHookInstalled = false;
let exiting = false;

/**
 * Lines gathered for up to ACCESS_LOG_MAX_DELAY_MS (or ACCESS_LOG_MAX_BYTES) and written in one
 * call: a write per line cost more than the rest of the account stage (each is a trip through
 * libuv's thread pool), while a second's delay is invisible in an access log. Fewer, larger
 * writes also mean fewer hand-offs to the thread pool's writer, each a chance for a saturated
 * core to switch away from the proxy: with 64 KiB or 100 ms batches (12-20 writes a second at
 * 4,000 requests a second) the anonymous log read −3.5% to −5.9% of throughput in five steady
 * pairs runs (mean −4.8%), with 1 MiB or 1 s −1.7% to −5.4% in six (mean −4.0%). Pending lines
 * are written, and the destination flushed, when the process exits.
 *
 * A request line is only noted per request (its labels, kind and five numbers, in arrays reused
 * from batch to batch); lines are encoded into one reused buffer a batch at a time. Formatted
 * one by one between the proxy's other work, each line paid cold caches several times over what
 * it costs in a loop, and held as strings they outlived the young generation (issue 5:
 * accounting under 5% of forwarding).
 */
export class LineBatch implements DestinationStream {
  readonly #destination: DestinationStream;
  readonly #maxBytes: number;
  readonly #maxDelayMs: number;
  /** Replaced at each write when the destination takes buffers (FdDestination): it keeps the one written. */
  #buffer: Buffer;
  #length = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #flush = (): void => this.flush();
  // Request lines noted and not yet encoded: NOTED_FIELDS numbers each, in order.
  #noted = 0;
  readonly #numbers = new Float64Array(MAX_NOTED * NOTED_FIELDS);
  readonly #labels: AccessLabels[] = [];
  readonly #pseudonyms: (string | undefined)[] = [];

  constructor(destination: DestinationStream, options: LineBatchOptions = {}) {
    this.#destination = destination;
    this.#maxBytes = options.maxBytes ?? ACCESS_LOG_MAX_BYTES;
    this.#maxDelayMs = options.maxDelayMs ?? ACCESS_LOG_MAX_DELAY_MS;
    this.#buffer = Buffer.allocUnsafe(this.#maxBytes);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once('exit', () => {
        exiting = true;
        for (const pending of [...pendingBatches]) pending();
      });
    }
  }

  write(line: string): void {
    this.#encodeNoted();
    const bytes = Buffer.byteLength(line);
    if (bytes > this.#buffer.length - this.#length) {
      this.#writeChunk();
      if (bytes > this.#buffer.length) {
        this.#destination.write(line);
        return;
      }
    }
    this.#length += this.#buffer.write(line, this.#length, 'utf8');
    if (this.#length >= this.#maxBytes) this.#writeChunk();
    else this.#armTimer();
  }

  /**
   * formatRequestLine()'s text, timed now; `pseudonym` only in pseudonymous mode. Noted here,
   * encoded with the batch.
   */
  writeRequest(labels: AccessLabels, status: number, bytesIn: number, bytesOut: number, durationMs: number, kind: string, pseudonym: string | undefined): void {
    const kindAt = kindIndex(kind);
    if (kindAt < 0) {
      // A kind out of the ordinary: the string path writes the same text.
      this.write(formatRequestLine(labels, status, bytesIn, bytesOut, durationMs, kind, pseudonym));
      return;
    }
    const i = this.#noted;
    const numbers = this.#numbers;
    const at = i * NOTED_FIELDS;
    numbers[at] = Date.now();
    numbers[at + 1] = status;
    numbers[at + 2] = bytesIn;
    numbers[at + 3] = bytesOut;
    numbers[at + 4] = durationMs;
    numbers[at + 5] = kindAt;
    this.#labels[i] = labels;
    this.#pseudonyms[i] = pseudonym;
    this.#noted = i + 1;
    if (this.#noted === MAX_NOTED) this.#encodeNoted();
    this.#armTimer();
  }

  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    pendingBatches.delete(this.#flush);
    this.#encodeNoted();
    this.#writeChunk();
  }

  /** Encode the noted request lines into the buffer, writing it out whenever it fills. */
  #encodeNoted(): void {
    const noted = this.#noted;
    if (noted === 0) return;
    this.#noted = 0;
    const numbers = this.#numbers;
    // Reread after each #writeChunk(): a destination that takes buffers hands back another.
    let buffer = this.#buffer;
    for (let i = 0; i < noted; i += 1) {
      const labels = this.#labels[i] as AccessLabels;
      const n = i * NOTED_FIELDS;
      const kindAt = numbers[n + 5] as number;
      const kind = KINDS[kindAt] as string;
      const kindBytes = KIND_BYTES[kindAt] as Buffer;
      const kindEnd = KIND_END_BYTES[kindAt] as Buffer;
      const pseudonym = this.#pseudonyms[i];
      this.#pseudonyms[i] = undefined;
      const who = pseudonym === undefined ? undefined : `,"pseudonym":${quote(pseudonym)}`;
      // Numbers take at most 24 bytes each (String() of any double); the rest is known.
      const most = PREFIX_MAX + labels.middle.length + FIXED_BYTES + 4 * 24 + kindEnd.length + (who === undefined ? 0 : 3 * who.length);
      if (most > buffer.length - this.#length) {
        this.#writeChunk();
        buffer = this.#buffer;
        if (most > buffer.length) {
          // Longer than a whole batch (a policy name of many kilobytes): as a string of its own.
          this.#destination.write(formatRequestLineAt(numbers[n] as number, labels, numbers[n + 1] as number, numbers[n + 2] as number, numbers[n + 3] as number, numbers[n + 4] as number, kind, pseudonym));
          continue;
        }
      }
      let at = this.#length;
      // Each put() costs about as much as 40 bytes of copying: constant runs are joined
      // beforehand (labels.middle, kind and end) so a line takes six.
      at = putTime(buffer, at, numbers[n] as number);
      at = put(buffer, at, labels.middle);
      at = putNumber(buffer, at, numbers[n + 1] as number);
      at = put(buffer, at, BYTES_IN);
      at = putNumber(buffer, at, numbers[n + 2] as number);
      at = put(buffer, at, BYTES_OUT);
      at = putNumber(buffer, at, numbers[n + 3] as number);
      at = put(buffer, at, DURATION);
      at = putNumber(buffer, at, numbers[n + 4] as number);
      if (who === undefined) {
        at = put(buffer, at, kindEnd);
      } else {
        at = put(buffer, at, kindBytes);
        at += buffer.write(who, at, 'utf8');
        at = put(buffer, at, END);
      }
      this.#length = at;
    }
    if (this.#length >= this.#maxBytes) this.#writeChunk();
  }

  #writeChunk(): void {
    // At exit an asynchronous write started now might never complete, and one queued behind it
    // would be written before it by flushSync(): pino's destination (SonicBoom) is switched to
    // synchronous writes first (here, before any write at exit), so every chunk lands, in order.
    if (exiting) makeSynchronous(this.#destination);
    if (this.#length === 0) return;
    const destination = this.#destination;
    if (isBufferDestination(destination)) {
      // The bytes as they are: no string to decode, concatenate and encode again.
      this.#buffer = destination.writeBuffer(this.#buffer, this.#length);
      this.#length = 0;
    } else {
      const chunk = this.#buffer.toString('utf8', 0, this.#length);
      this.#length = 0;
      destination.write(chunk);
    }
    // At exit an asynchronous destination must be drained now or the chunk is lost.
    if (exiting) {
      try {
        (this.#destination as { flushSync?: () => void }).flushSync?.();
      } catch {
        // A destination busy with an earlier write cannot flush synchronously; nothing more to do.
      }
    }
  }

  #armTimer(): void {
    if (this.#timer === undefined) {
      this.#timer = setTimeout(this.#flush, this.#maxDelayMs);
      this.#timer.unref();
      pendingBatches.add(this.#flush);
    }
  }
}

/** SonicBoom reads its `sync` flag at each write: set it and later writes are synchronous. */
function makeSynchronous(destination: DestinationStream): void {
  const sonic = destination as { sync?: unknown };
  if (typeof sonic.sync === 'boolean') sonic.sync = true;
}

/** Request lines noted before they are encoded together. */
const MAX_NOTED = 256;
/** Per noted line: time (epoch ms), status, bytesIn, bytesOut, durationMs, index in KINDS. */
const NOTED_FIELDS = 6;

export function batched(destination: DestinationStream, options?: LineBatchOptions): LineBatch {
  return new LineBatch(destination, options);
}

const BYTES_IN = Buffer.from(',"bytesIn":');
const BYTES_OUT = Buffer.from(',"bytesOut":');
const DURATION = Buffer.from(',"durationMs":');
const END = Buffer.from(',"msg":"access"}\n');
const FIXED_BYTES = BYTES_IN.length + BYTES_OUT.length + DURATION.length + END.length;
/** `{"level":"info","time":"<ISO time, up to 27 characters>","service":"leeway","log":"access"`. */
const PREFIX_MAX = 128;
const KINDS = ['http', 'https', 'tunnel', 'websocket'];
/** Index in KINDS, -1 for another kind: a comparison or two rather than a Map lookup per line. */
function kindIndex(kind: string): number {
  switch (kind) {
    case 'http': return 0;
    case 'https': return 1;
    case 'tunnel': return 2;
    case 'websocket': return 3;
    default: return -1;
  }
}
const KIND_BYTES = KINDS.map((kind) => Buffer.from(`,"kind":"${kind}"`));
const KIND_END_BYTES = KIND_BYTES.map((bytes) => Buffer.concat([bytes, END]));

/**
 * The line's start up to pino's time without its final `Z`: the part up to the second is
 * encoded once per second and the milliseconds written as three digits. Rebuilt per millisecond
 * (an ISO string and a small Buffer each time), it was a tenth of the account stage in a
 * profile of a loaded proxy. The `Z` and the rest of the envelope open AccessLabels.middle.
 */
function putTime(buffer: Buffer, at: number, millis: number): number {
  // Within the second encoded last, a subtraction; a remainder of a double (a call) only when it changes.
  let ms = millis - headSecond;
  if (!(ms >= 0 && ms < 1000)) {
    ms = ((millis % 1000) + 1000) % 1000;
    headSecond = millis - ms;
    const iso = new Date(headSecond).toISOString();
    // toISOString always ends in `.mmmZ`, whatever the width of the year before.
    headBytes = Buffer.from(`${ENVELOPE_HEAD}${iso.slice(0, -4)}`);
  }
  const end = put(buffer, at, headBytes);
  buffer[end] = 0x30 + Math.floor(ms / 100);
  buffer[end + 1] = 0x30 + (Math.floor(ms / 10) % 10);
  buffer[end + 2] = 0x30 + (ms % 10);
  return end + 3;
}

let headSecond = Number.NaN;
let headBytes = Buffer.alloc(0);
/** pino's envelope of an access line, around its time: `{"level":"info","time":"…","service":"leeway","log":"access"`. */
const ENVELOPE_HEAD = '{"level":"info","time":"';
const ENVELOPE_TAIL = '","service":"leeway","log":"access"';

function put(buffer: Buffer, at: number, bytes: Buffer): number {
  buffer.set(bytes, at);
  return at + bytes.length;
}

/** A number as JSON writes it: digits by hand for the usual non-negative integers, else String(). */
function putNumber(buffer: Buffer, at: number, value: number): number {
  if (!(value >= 0 && value < 1e15 && Number.isInteger(value))) return at + buffer.write(String(jsonNumber(value)), at, 'latin1');
  if (value === 0) {
    buffer[at] = 0x30;
    return at + 1;
  }
  if (value < 0x80000000) {
    // The usual case (a status, a size under 2 GiB, a duration): 32-bit integer arithmetic.
    let digits = 1;
    for (let rest = (value / 10) | 0; rest > 0; rest = (rest / 10) | 0) digits += 1;
    let rest = value | 0;
    for (let i = at + digits - 1; i >= at; i -= 1) {
      const next = (rest / 10) | 0;
      buffer[i] = 0x30 + rest - next * 10;
      rest = next;
    }
    return at + digits;
  }
  let digits = 0;
  for (let rest = value; rest >= 1; rest = Math.floor(rest / 10)) digits += 1;
  let rest = value;
  for (let i = at + digits - 1; i >= at; i -= 1) {
    buffer[i] = 0x30 + (rest % 10);
    rest = Math.floor(rest / 10);
  }
  return at + digits;
}

/**
 * One access line in exactly the JSON pino writes for `logger.child({ log: 'access' }).info(fields,
 * 'access')`, built directly from the allow-listed fields: on a busy proxy pino's generic
 * serializer was most of the account stage's cost. Only strings and numbers ever reach it.
 */
export function formatAccessLine(entry: AccessEntry, fields: readonly AccessField[]): string {
  let line = linePrefix();
  for (const field of fields) {
    const value = entry[field];
    if (value === undefined) continue;
    line += typeof value === 'number' ? `,"${field}":${Number.isFinite(value) ? value : 'null'}` : `,"${field}":${quote(value)}`;
  }
  return `${line},"msg":"access"}\n`;
}

// Policy names, enums and pseudonyms need no escaping; anything else goes through JSON.stringify.
const PLAIN = /^[\w.~+/=-]*$/;

function quote(value: string): string {
  return PLAIN.test(value) ? `"${value}"` : JSON.stringify(value);
}

/**
 * The label part of a request's access line (`,"category":…,"site":…,"action":…`, the first
 * three fields of every mode), for a caller that builds it once per label combination and
 * keeps it: the values come from bounded sets, so there are few.
 */
export interface AccessLabels {
  readonly category: string;
  readonly site: string;
  readonly action: string;
  readonly json: string;
  /**
   * What LineBatch copies between the time and the status, in UTF-8: the end of the time and
   * of pino's envelope, `json`, and the status's key.
   */
  readonly middle: Buffer;
}

export function accessLabels(category: string, site: string, action: string): AccessLabels {
  const json = `,"category":${quote(category)},"site":${quote(site)},"action":${quote(action)}`;
  return { category, site, action, json, middle: Buffer.from(`Z${ENVELOPE_TAIL}${json},"status":`) };
}

const KIND_JSON = new Map(KINDS.map((kind) => [kind, `,"kind":${quote(kind)}`]));

let prefixMillis = Number.NaN;
let prefix = '';
/**
 * Everything before the fields, with pino's time, rebuilt when the millisecond changes: one
 * clock read and a number comparison per line.
 */
function refreshPrefix(millis: number): void {
  if (millis === prefixMillis) return;
  prefixMillis = millis;
  prefix = `${ENVELOPE_HEAD}${new Date(millis).toISOString()}${ENVELOPE_TAIL}`;
}

function linePrefix(millis = Date.now()): string {
  refreshPrefix(millis);
  return prefix;
}

/** A number as JSON.stringify (and so pino) writes it. */
function jsonNumber(value: number): number | string {
  return Number.isFinite(value) ? value : 'null';
}

/** formatAccessLine() for a request, from labels built beforehand; the same text for the same fields. */
function formatRequestLine(labels: AccessLabels, status: number, bytesIn: number, bytesOut: number, durationMs: number, kind: string, pseudonym: string | undefined): string {
  return formatRequestLineAt(Date.now(), labels, status, bytesIn, bytesOut, durationMs, kind, pseudonym);
}

function formatRequestLineAt(millis: number, labels: AccessLabels, status: number, bytesIn: number, bytesOut: number, durationMs: number, kind: string, pseudonym: string | undefined): string {
  const kindJson = KIND_JSON.get(kind) ?? `,"kind":${quote(kind)}`;
  const who = pseudonym === undefined ? '' : `,"pseudonym":${quote(pseudonym)}`;
  return `${linePrefix(millis)}${labels.json},"status":${jsonNumber(status)},"bytesIn":${jsonNumber(bytesIn)},"bytesOut":${jsonNumber(bytesOut)},"durationMs":${jsonNumber(durationMs)}${kindJson}${who},"msg":"access"}\n`;
}

export interface AccessLog {
  readonly mode: AccessLogMode;
  write(entry: AccessEntry): void;
  /**
   * The per-request path: a writer for the lines of the mode in force now, or undefined when it
   * writes no per-request lines. The labels are built once by accessLabels(), the rest passed as
   * arguments, so nothing is allocated for a line but its text; `pseudonym` reaches a line only
   * in pseudonymous mode. The mode is read once per call: a caller writing many lines together
   * (the account stage's batches) asks again at its next batch, so reloads apply.
   */
  requestWriter(): RequestWriter | undefined;
  /** Write the lines still held in a batch (on shutdown, or before reading the log in tests). */
  flush(): void;
}

export type RequestWriter = (labels: AccessLabels, status: number, bytesIn: number, bytesOut: number, durationMs: number, kind: string, pseudonym: string) => void;

export interface AccessLogOptions {
  /** The live mode (policy reloads may change it); read per write() and per requestWriter(). */
  readonly mode: () => AccessLogMode;
  /** Warnings go here; access lines too unless `destination` is given. */
  readonly logger: Logger;
  /**
   * Where access lines go through a logger of their own: no redaction pass (the allow-list
   * already guarantees what a line holds) and, with a buffered destination, no write per request.
   */
  readonly destination?: DestinationStream;
}

export function createAccessLog(options: AccessLogOptions): AccessLog {
  const batch = options.destination === undefined ? undefined : batched(options.destination);
  // Without a destination of their own, lines go through the main logger (embedders, tests).
  const access = options.logger.child({ log: 'access' });
  let warnedFor: AccessLogMode | undefined;
  const warnIfPseudonymous = (mode: AccessLogMode): void => {
    if (mode === 'pseudonymous' && warnedFor !== mode) {
      options.logger.warn(
        { log: 'access', accessLog: mode },
        'access log is pseudonymous: each line carries the daily pseudonym of the person (settings.accessLog); use anonymous unless you must',
      );
    }
    warnedFor = mode;
  };
  warnIfPseudonymous(options.mode());
  // One writer per mode, made once: `pseudonym` reaches a line only in pseudonymous mode.
  const viaLogger = (fields: readonly AccessField[]): RequestWriter => (labels, status, bytesIn, bytesOut, durationMs, kind, pseudonym) => {
    const entry: AccessEntry = { category: labels.category, site: labels.site, action: labels.action, status, bytesIn, bytesOut, durationMs, kind, pseudonym };
    access.info(pickAccessFields(entry, fields), 'access');
  };
  const anonymous: RequestWriter = batch === undefined
    ? viaLogger(ANONYMOUS_FIELDS)
    : (labels, status, bytesIn, bytesOut, durationMs, kind) => batch.writeRequest(labels, status, bytesIn, bytesOut, durationMs, kind, undefined);
  const pseudonymous: RequestWriter = batch === undefined
    ? viaLogger(PSEUDONYMOUS_FIELDS)
    : (labels, status, bytesIn, bytesOut, durationMs, kind, pseudonym) => batch.writeRequest(labels, status, bytesIn, bytesOut, durationMs, kind, pseudonym);
  const requestWriter = (): RequestWriter | undefined => {
    const mode = options.mode();
    if (mode !== warnedFor) warnIfPseudonymous(mode);
    switch (mode) {
      case 'aggregate-only': return undefined;
      case 'anonymous': return anonymous;
      case 'pseudonymous': return pseudonymous;
    }
  };
  return {
    get mode(): AccessLogMode {
      return options.mode();
    },
    write(entry: AccessEntry): void {
      const mode = options.mode();
      if (mode !== warnedFor) warnIfPseudonymous(mode);
      const fields = fieldsFor(mode);
      if (fields.length === 0) return;
      if (batch !== undefined) batch.write(formatAccessLine(entry, fields));
      else access.info(pickAccessFields(entry, fields), 'access');
    },
    requestWriter,
    flush(): void {
      batch?.flush();
    },
  };
}
