/**
 * A lean HTTP/1.1 load generator for benchmarks that load several proxies at once: keep-alive
 * connections with one request in flight on each, responses framed by Content-Length only (the
 * bench origins always send it). It parses a response in a few buffer scans, where autocannon
 * runs a full HTTP parser and keeps histograms: one process on one core can then saturate a
 * proxy on the other core, and it stays up between measurement windows, so no start-up time
 * falls inside one.
 *
 * Run as a child process with IPC: argv[2] is JSON `LoadOptions`. Answers 'count' with
 * `LoadCounts`; exits when the parent disconnects or after `maxSeconds`. Loopback only: every target is 127.0.0.1.
 */
import net from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot, spawnNodeOn } from './common.js';

export interface LoadOptions {
  /** Proxy ports on 127.0.0.1, each loaded by `connections` connections. */
  readonly ports: readonly number[];
  readonly connections: number;
  /** The whole request, sent as is on every round trip. */
  readonly request: string;
  /** The load stops by itself after this long, whatever the parent does. */
  readonly maxSeconds: number;
}

/** Sent over IPC: load only the ports at these indexes from now on (all of them at start). */
export interface LoadSelect {
  readonly active: readonly number[];
}

export interface LoadCounts {
  /** Per port: responses completed with a 2xx, and anything else (other statuses, resets). */
  readonly ok: number[];
  readonly failed: number[];
}

/** The parent's side: a load generator started on core 0, asked over IPC, and stopped. */
export interface LoadGenerator {
  /** Sends `message` ('count', or a LoadSelect) and resolves with the answer (LoadCounts, or 'selected'). */
  ask<T>(message: unknown): Promise<T>;
  /** Ends the load: the generator exits when its parent disconnects. */
  stop(): void;
}

export function startLoadGenerator(options: LoadOptions): LoadGenerator {
  const argv = ['--import', 'tsx', join(repoRoot, 'bench', 'lib', 'keepalive-load.ts'), JSON.stringify(options)];
  const child = spawnNodeOn(0, argv, ['ignore', 'inherit', 'inherit', 'ipc']);
  return {
    ask: <T>(message: unknown): Promise<T> => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the load generator did not answer')), 30_000);
      child.once('message', (answer) => {
        clearTimeout(timer);
        resolve(answer as T);
      });
      child.send(message as string);
    }),
    stop: () => {
      if (child.connected) child.disconnect();
    },
  };
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Per port index: whether it is loaded now. */
const active: boolean[] = [];
/** Per port index: connections that finished an exchange while their port was not loaded. */
const parked: (() => void)[][] = [];

function loadConnection(port: number, request: Buffer, counts: LoadCounts, index: number): void {
  const socket = net.connect({ host: '127.0.0.1', port, noDelay: true });
  let inFlight = false;
  const next = (): void => {
    if (socket.destroyed) return;
    inFlight = active[index] === true;
    if (inFlight) socket.write(request);
    else parked[index]?.push(next);
  };
  let pending: Buffer | undefined;
  // Body bytes still to come; -1 while reading a head.
  let need = -1;
  let ok = false;
  socket.on('connect', next);
  socket.on('error', () => undefined);
  socket.on('close', () => {
    // An idle connection closed by the proxy's keep-alive timeout is no failure.
    if (inFlight) counts.failed[index] = (counts.failed[index] ?? 0) + 1;
    // Keep the load steady: a lost connection is replaced.
    if (!stopped) setTimeout(() => loadConnection(port, request, counts, index), 10);
  });
  socket.on('data', (chunk: Buffer) => {
    const data = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
    pending = undefined;
    let at = 0;
    while (at < data.length) {
      if (need < 0) {
        const end = data.indexOf(CRLFCRLF, at);
        if (end === -1) {
          pending = data.subarray(at);
          return;
        }
        const head = data.toString('latin1', at, end);
        const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
        if (length === null) {
          socket.destroy();
          return;
        }
        ok = head.charCodeAt(9) === 50; // "HTTP/1.1 2xx"
        need = Number(length[1]);
        at = end + 4;
      }
      const take = Math.min(need, data.length - at);
      need -= take;
      at += take;
      if (need === 0) {
        need = -1;
        if (ok) counts.ok[index] = (counts.ok[index] ?? 0) + 1;
        else counts.failed[index] = (counts.failed[index] ?? 0) + 1;
        next();
      }
    }
  });
}

let stopped = false;

function loadRole(options: LoadOptions): void {
  const counts: LoadCounts = { ok: options.ports.map(() => 0), failed: options.ports.map(() => 0) };
  const request = Buffer.from(options.request, 'latin1');
  options.ports.forEach((port, index) => {
    active[index] = true;
    parked[index] = [];
    for (let i = 0; i < options.connections; i += 1) loadConnection(port, request, counts, index);
  });
  process.on('message', (message) => {
    if (message === 'count') process.send?.(counts);
    else if (typeof message === 'object' && message !== null && 'active' in message) {
      const select = message as LoadSelect;
      options.ports.forEach((_port, index) => {
        active[index] = select.active.includes(index);
        if (active[index] === true) for (const resume of (parked[index] ?? []).splice(0)) resume();
      });
      process.send?.('selected');
    }
  });
  setTimeout(() => process.exit(0), options.maxSeconds * 1000);
  process.on('disconnect', () => {
    stopped = true;
    process.exit(0);
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) loadRole(JSON.parse(process.argv[2] ?? '{}') as LoadOptions);
