/**
 * Start Leeway for a test: in process with createLeeway (port 0, admin port 0), or as the real
 * CLI in a child process (`node --import tsx src/cli.ts start`), reading the bound addresses from
 * its "leeway listening" log line. Plus small clients: an undici ProxyAgent and raw sockets.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { ProxyAgent } from 'undici';
import { createLeeway } from '../../src/index.js';
import type { Leeway, LeewayOptions } from '../../src/index.js';

export interface RunningLeeway {
  readonly leeway: Leeway;
  readonly port: number;
  /** `http://127.0.0.1:PORT`, for undici's ProxyAgent. */
  readonly proxyUrl: string;
  readonly adminUrl: string;
  /** A ProxyAgent through this proxy (closed by close()). */
  readonly agent: ProxyAgent;
  close(): Promise<void>;
}

export async function startLeeway(options: Omit<LeewayOptions, 'listen' | 'admin'>): Promise<RunningLeeway> {
  const leeway = await createLeeway({ ...options, listen: '127.0.0.1:0', admin: '127.0.0.1:0' });
  const addresses = await leeway.listen();
  const proxyUrl = `http://127.0.0.1:${addresses.proxy.port}`;
  // proxyTunnel: false sends plain-http requests in absolute-form (undici 7 would CONNECT by default).
  const agent = new ProxyAgent({ uri: proxyUrl, proxyTunnel: false });
  return {
    leeway,
    port: addresses.proxy.port,
    proxyUrl,
    adminUrl: `http://127.0.0.1:${addresses.admin?.port ?? 0}`,
    agent,
    close: async () => {
      await agent.close();
      await leeway.close(1_000);
    },
  };
}

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface SpawnedLeeway {
  readonly child: ChildProcess;
  readonly port: number;
  readonly adminPort: number;
  /** Every stdout line so far, parsed as JSON where possible. */
  readonly lines: Record<string, unknown>[];
  /** Resolves with the first log line that matches. */
  waitForLine(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
}

/** Spawn the real CLI with `--listen 127.0.0.1:0 --admin 127.0.0.1:0`. */
export async function spawnLeeway(policies: string, env: Record<string, string> = {}): Promise<SpawnedLeeway> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'cli.ts'), 'start', '--policies', policies, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], {
    cwd: repoRoot,
    env: { ...process.env, LEEWAY_LOG_LEVEL: 'debug', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  const waiters: { match: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }[] = [];
  let buffer = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (text: string) => {
    buffer += text;
    let newline: number;
    while ((newline = buffer.indexOf('\n')) !== -1) {
      const raw = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        line = { raw };
      }
      lines.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.match(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    stderr += text;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waitForLine = (match: (line: Record<string, unknown>) => boolean, timeoutMs = 20_000): Promise<Record<string, unknown>> => {
    const seen = lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
      waiters.push({
        match,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
      void exited.then((code) => reject(new Error(`leeway exited with ${code} before the expected line; stderr: ${stderr}`)));
    });
  };
  const listening = await waitForLine((line) => line.msg === 'leeway listening');
  const portOf = (text: unknown): number => Number(String(text).slice(String(text).lastIndexOf(':') + 1));
  return {
    child,
    port: portOf(listening.proxy),
    adminPort: portOf(listening.admin),
    lines,
    waitForLine,
    exited,
    kill: (signal = 'SIGTERM') => {
      child.kill(signal);
    },
  };
}

/**
 * Send raw bytes to a port and collect everything until the server closes (or `untilText`
 * appears, or timeoutMs passes). For requests undici will not send (CONNECT to port 25, ...).
 */
export function rawExchange(port: number, text: string | Buffer, options: { untilText?: string; timeoutMs?: number; localAddress?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    // localAddress (127.0.0.2, ...) makes the proxy see another client on the same machine.
    const socket = net.connect({ host: '127.0.0.1', port, ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }) });
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(received);
    }, options.timeoutMs ?? 5_000);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (options.untilText !== undefined && received.includes(options.untilText)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(received);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      if (received !== '') resolve(received);
      else reject(error);
    });
    socket.write(text);
  });
}

/** Status code of a raw HTTP response text, or 0. */
export function statusOf(response: string): number {
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(response);
  return match === null ? 0 : Number(match[1]);
}
