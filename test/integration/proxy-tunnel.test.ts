/**
 * CONNECT tunnels and WebSockets (issue 3 items 4 and 5): allowed ports only, bytes both ways,
 * half-close, refused origins; a `ws` client echoing through the proxy; a policy page refusing
 * an upgrade.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { writeTestPolicy } from '../helpers/policy.js';
import { noopAccounting } from '../../src/index.js';
import type { Accounting, RequestRecord, TunnelActivity } from '../../src/index.js';
import type { TestPolicy } from '../helpers/policy.js';
import { bytesPerTurn, startEchoServer, startFirehose } from '../helpers/origin.js';
import { rawExchange, startLeeway, statusOf } from '../helpers/proxy.js';
import { connectOrigin, relayLink, TUNNEL_READ_BYTES } from '../../src/proxy/tunnel.js';
import type { RunningLeeway } from '../helpers/proxy.js';

let echo: net.Server;
let echoPort: number;
let wsOrigin: http.Server;
let wsPort: number;
let policy: TestPolicy;
let proxy: RunningLeeway;

beforeAll(async () => {
  ({ server: echo, port: echoPort } = await startEchoServer());
  wsOrigin = http.createServer();
  const wss = new WebSocketServer({ server: wsOrigin });
  wss.on('connection', (socket) => socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary })));
  await new Promise<void>((resolve) => wsOrigin.listen(0, '127.0.0.1', resolve));
  wsPort = (wsOrigin.address() as AddressInfo).port;
  policy = await writeTestPolicy({ proxy: { connectPorts: [443, echoPort] } });
  proxy = await startLeeway({ policies: policy.dir });
});

afterAll(async () => {
  await proxy.close();
  await new Promise((resolve) => echo.close(resolve));
  wsOrigin.closeAllConnections();
  await new Promise((resolve) => wsOrigin.close(resolve));
  await policy.cleanup();
});

/** Open a CONNECT tunnel; resolves with the socket once the 200 head has been read. */
function openTunnel(target: string): Promise<{ socket: net.Socket; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port, allowHalfOpen: true });
    let buffer = '';
    const onData = (chunk: Buffer): void => {
      buffer += chunk.toString('latin1');
      const end = buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      resolve({ socket, head: buffer.slice(0, end) });
    };
    socket.on('data', onData);
    socket.on('error', reject);
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

describe('CONNECT', () => {
  it('reports tunnel bytes to accounting as they flow and when the tunnel closes', async () => {
    const flows: TunnelActivity[] = [];
    const records: RequestRecord[] = [];
    const accounting: Accounting = { ...noopAccounting, tunnelBytes: (r) => void flows.push(r), requestDone: (r) => void records.push(r) };
    const local = await writeTestPolicy({ proxy: { connectPorts: [echoPort] } });
    const counted = await startLeeway({ policies: local.dir, accounting });
    try {
      const socket = net.connect({ host: '127.0.0.1', port: counted.port, allowHalfOpen: true });
      const received: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => received.push(chunk));
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.write(`CONNECT origin.test:${echoPort} HTTP/1.1\r\nHost: origin.test\r\n\r\n`);
      socket.write(Buffer.alloc(100_000, 1));
      socket.end();
      await closed;
      await new Promise((resolve) => setTimeout(resolve, 50));
      const sum = (direction: string) => flows.filter((f) => f.direction === direction).reduce((total, f) => total + f.bytes, 0);
      expect(sum('client-to-origin')).toBe(100_000);
      expect(sum('origin-to-client')).toBe(100_003);
      expect(flows.every((f) => f.kind === 'tunnel')).toBe(true);
      const record = records.find((r) => r.kind === 'tunnel');
      expect(record?.bytesIn).toBe(100_000);
      expect(record?.bytesOut).toBe(100_003);
      expect(JSON.stringify([...flows, ...records])).not.toContain('127.0.0.1');
    } finally {
      await counted.close();
      await local.cleanup();
    }
  });

  it('relays bytes both ways and handles half-close', async () => {
    const { socket, head } = await openTunnel(`origin.test:${echoPort}`);
    expect(statusOf(head)).toBe(200);
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    const payload = Buffer.alloc(256 * 1024, 7);
    socket.write(payload);
    // Half-close our side: the origin still answers "bye" after seeing our end.
    socket.end();
    await closed;
    const all = Buffer.concat(received);
    expect(all.length).toBe(payload.length + 3);
    expect(all.subarray(-3).toString()).toBe('bye');
  });

  it('relays 20 MB exactly, byte for byte count, to a client that pauses reading', async () => {
    const { socket, head } = await openTunnel(`origin.test:${echoPort}`);
    expect(statusOf(head)).toBe(200);
    const total = 20 * 1024 * 1024;
    let received = 0;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.pause();
    setTimeout(() => socket.resume(), 300);
    const block = Buffer.alloc(1024 * 1024, 5);
    for (let sent = 0; sent < total; sent += block.length) {
      if (!socket.write(block)) await new Promise((resolve) => socket.once('drain', resolve));
    }
    socket.end();
    await closed;
    expect(received).toBe(total + 3);
  });

  it('holds an endless origin back while the client does not read (bounded buffering)', async () => {
    const firehose = await startFirehose();
    const port = firehose.port;
    const local = await writeTestPolicy({ proxy: { connectPorts: [port] } });
    const other = await startLeeway({ policies: local.dir });
    try {
      const socket = net.connect({ host: '127.0.0.1', port: other.port });
      socket.on('error', () => undefined);
      socket.write(`CONNECT origin.test:${port} HTTP/1.1\r\nHost: origin.test\r\n\r\n`);
      // Never read: without backpressure the proxy would buffer hundreds of MB in this time.
      socket.pause();
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(firehose.written()).toBeLessThan(48 * 1024 * 1024);
      socket.destroy();
    } finally {
      await other.close();
      await local.cleanup();
      await firehose.close();
    }
  });

  it('reads a fast origin once per turn of the event loop, at most TUNNEL_READ_BYTES at a time', async () => {
    // An origin that writes as fast as it can and a client that reads everything: without the
    // one-read-per-turn rule, libuv reads the origin again and again within one turn (up to 32
    // reads), so one download holds the loop while other connections wait.
    const firehose = await startFirehose();
    const sink = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.resume();
    });
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    const client = net.connect({ host: '127.0.0.1', port: (sink.address() as AddressInfo).port });
    client.on('error', () => undefined);
    await new Promise((resolve) => client.once('connect', resolve));
    let link: ReturnType<typeof connectOrigin> | undefined;
    try {
      const origin = await new Promise<ReturnType<typeof connectOrigin>>((resolve, reject) => {
        const opened = connectOrigin('origin.test', { address: '127.0.0.1', family: 4 }, firehose.port, 5_000, (error) => (error === undefined ? resolve(opened) : reject(error)));
        link = opened;
      });
      relayLink(client, origin, Buffer.alloc(0), { idleMs: 10_000, connectMs: 5_000 }, () => undefined);
      const figures = await bytesPerTurn(() => origin.socket.bytesRead, 64 * 1024 * 1024);
      expect(figures.read).toBeGreaterThan(8 * 1024 * 1024);
      expect(figures.turns).toBeGreaterThan(16);
      expect(figures.most).toBeGreaterThan(0);
      expect(figures.most).toBeLessThanOrEqual(TUNNEL_READ_BYTES);
    } finally {
      client.destroy();
      link?.socket.destroy();
      await firehose.close();
      await new Promise((resolve) => sink.close(resolve));
    }
  });

  it('refuses CONNECT to port 25', async () => {
    const response = await rawExchange(proxy.port, 'CONNECT origin.test:25 HTTP/1.1\r\nHost: origin.test:25\r\n\r\n');
    expect(statusOf(response)).toBe(403);
    expect(response).toContain('LEEWAY_ERR_PORT_FORBIDDEN');
  });

  it('answers 502 when the origin refuses the tunnel', async () => {
    const spare = net.createServer();
    await new Promise<void>((resolve) => spare.listen(0, '127.0.0.1', resolve));
    const port = (spare.address() as AddressInfo).port;
    await new Promise((resolve) => spare.close(resolve));
    const local = await writeTestPolicy({ proxy: { connectPorts: [port] } });
    const other = await startLeeway({ policies: local.dir });
    try {
      const response = await rawExchange(other.port, `CONNECT origin.test:${port} HTTP/1.1\r\nHost: origin.test\r\n\r\n`);
      expect(statusOf(response)).toBe(502);
      expect(response).toContain('LEEWAY_ERR_UPSTREAM_REFUSED');
    } finally {
      await other.close();
      await local.cleanup();
    }
  });

  it('refuses a CONNECT to the proxy itself', async () => {
    const local = await writeTestPolicy({ proxy: { connectPorts: [443] } });
    const other = await startLeeway({ policies: local.dir });
    try {
      // The proxy's port is known only once it listens: allow CONNECT to it through a reload.
      await local.write({ proxy: { connectPorts: [other.port] } });
      expect((await other.leeway.reload()).ok).toBe(true);
      const response = await rawExchange(other.port, `CONNECT 127.0.0.1:${other.port} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      expect(statusOf(response)).toBe(508);
    } finally {
      await other.close();
      await local.cleanup();
    }
  });
});

/**
 * `ws` speaks to origins, not proxies: this agent connects to the proxy and rewrites the request
 * target to absolute-form before the head is written (ws builds an origin-form path).
 */
class ViaProxyAgent extends http.Agent {
  constructor(
    private readonly proxyPort: number,
    private readonly authority: string,
  ) {
    super();
  }

  override createConnection(): net.Socket {
    return net.connect({ host: '127.0.0.1', port: this.proxyPort });
  }

  addRequest(req: http.ClientRequest, options: unknown): void {
    req.path = `http://${this.authority}${req.path}`;
    // addRequest is public in Node but not in @types/node.
    (http.Agent.prototype as unknown as { addRequest(r: http.ClientRequest, o: unknown): void }).addRequest.call(this, req, options);
  }
}

describe('WebSocket', () => {
  it('echoes messages through the proxy', async () => {
    const authority = `origin.test:${wsPort}`;
    const client = new WebSocket(`ws://${authority}/chat`, { agent: new ViaProxyAgent(proxy.port, authority) });
    await new Promise<void>((resolve, reject) => {
      client.once('open', () => resolve());
      client.once('error', reject);
    });
    const replies: string[] = [];
    const done = new Promise<void>((resolve) =>
      client.on('message', (data: Buffer) => {
        replies.push(data.toString());
        if (replies.length === 3) resolve();
      }),
    );
    for (const text of ['one', 'two', 'three']) client.send(text);
    await done;
    expect(replies).toEqual(['one', 'two', 'three']);
    client.close();
  });

  it('refuses an upgrade the policy blocks', async () => {
    const authority = `block.test:${wsPort}`;
    const client = new WebSocket(`ws://${authority}/chat`, { agent: new ViaProxyAgent(proxy.port, authority) });
    const status = await new Promise<number>((resolve, reject) => {
      client.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      client.once('open', () => reject(new Error('opened')));
    });
    expect(status).toBe(403);
  });
});
