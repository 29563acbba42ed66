/**
 * HTTP forwarding through a real Leeway on port 0 to real origins (issue 3 items 3, 9, 10).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startOrigin } from '../helpers/origin.js';
import type { Origin } from '../helpers/origin.js';
import { writeTestPolicy } from '../helpers/policy.js';
import type { TestPolicy } from '../helpers/policy.js';
import { rawExchange, startLeeway, statusOf } from '../helpers/proxy.js';
import type { RunningLeeway } from '../helpers/proxy.js';

let origin: Origin;
let policy: TestPolicy;
let proxy: RunningLeeway;

beforeAll(async () => {
  origin = await startOrigin();
  // 127.0.0.254 stands for a forbidden destination: still loopback, so even a broken egress
  // check could never send a packet off the machine.
  policy = await writeTestPolicy({ proxy: { timeouts: { upstreamMs: 500 }, egress: { allow: ['127.0.0.0/8', '::1/128'], deny: ['127.0.0.254/32'] } } });
  proxy = await startLeeway({ policies: policy.dir });
});

afterAll(async () => {
  await proxy.close();
  await origin.close();
  await policy.cleanup();
});

describe('forwarding', () => {
  it('forwards a GET to a host mapped through settings.proxy.hosts', async () => {
    const res = await request(`http://origin.test:${origin.port}/hello`, { dispatcher: proxy.agent });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('hello from origin');
    expect(origin.received.at(-1)?.headers.host).toBe(`origin.test:${origin.port}`);
  });

  it('adds Via and strips hop-by-hop headers, those named in Connection, and proxy credentials', async () => {
    const response = await rawExchange(
      proxy.port,
      [
        `GET http://origin.test:${origin.port}/headers HTTP/1.1`,
        `Host: origin.test:${origin.port}`,
        'Connection: close, X-Private-Hop',
        'X-Private-Hop: secret',
        'Keep-Alive: timeout=5',
        'Proxy-Connection: keep-alive',
        'Proxy-Authorization: Basic dXNlcjpwYXNz',
        'TE: trailers',
        'X-End-To-End: kept',
        '',
        '',
      ].join('\r\n'),
    );
    expect(statusOf(response)).toBe(200);
    const received = origin.received.at(-1);
    const names = Object.keys(received?.headers ?? {});
    for (const hop of ['x-private-hop', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te']) expect(names).not.toContain(hop);
    expect(received?.headers['x-end-to-end']).toBe('kept');
    expect(received?.headers.via).toBe('1.1 leeway');
    expect(response).toMatch(/\r\nVia: 1\.1 leeway\r\n/i);
  });

  it('sends the target authority as Host, whatever Host the client sent (RFC 9112 §3.2.2)', async () => {
    const response = await rawExchange(proxy.port, `GET http://origin.test:${origin.port}/hello HTTP/1.1\r\nHost: elsewhere.example\r\nConnection: close\r\n\r\n`);
    expect(statusOf(response)).toBe(200);
    expect(origin.received.at(-1)?.headers.host).toBe(`origin.test:${origin.port}`);
  });

  it('reuses one origin connection for several requests (keep-alive)', async () => {
    const before = origin.connections();
    for (let i = 0; i < 10; i++) {
      const res = await request(`http://origin.test:${origin.port}/hello`, { dispatcher: proxy.agent });
      await res.body.text();
    }
    // The pool may already hold a socket from the earlier tests: at most one new connection.
    expect(origin.connections() - before).toBeLessThanOrEqual(1);
  });

  it('refuses a request that loops back to the proxy itself', async () => {
    const res = await request(`http://127.0.0.1:${proxy.port}/hello`, { dispatcher: proxy.agent });
    expect(res.statusCode).toBe(508);
    expect(res.headers['x-leeway-reason']).toBe('LEEWAY_ERR_LOOP');
    await res.body.text();
  });

  it("refuses to forward to its own admin listener (no /metrics for every proxy client)", async () => {
    const res = await request(`${proxy.adminUrl}/metrics`, { dispatcher: proxy.agent });
    expect(res.statusCode).toBe(508);
    expect(res.headers['x-leeway-reason']).toBe('LEEWAY_ERR_LOOP');
    await res.body.text();
  });

  it('answers 502 when the origin refuses the connection', async () => {
    const closed = await startOrigin();
    const port = closed.port;
    await closed.close();
    const res = await request(`http://origin.test:${port}/hello`, { dispatcher: proxy.agent });
    expect(res.statusCode).toBe(502);
    expect(res.headers['x-leeway-reason']).toBe('LEEWAY_ERR_UPSTREAM_REFUSED');
    await res.body.text();
  });

  it('answers 502 "host not found" for an unknown host', async () => {
    const res = await request('http://no-such-host.invalid/hello', { dispatcher: proxy.agent });
    expect(res.statusCode).toBe(502);
    expect(res.headers['x-leeway-reason']).toBe('LEEWAY_ERR_UPSTREAM_HOST_NOT_FOUND');
    expect(await res.body.text()).toContain('Host not found');
  });

  it('answers 504 when the origin does not answer in time', async () => {
    const res = await request(`http://origin.test:${origin.port}/silent`, { dispatcher: proxy.agent });
    expect(res.statusCode).toBe(504);
    expect(res.headers['x-leeway-reason']).toBe('LEEWAY_ERR_UPSTREAM_TIMEOUT');
    await res.body.text();
  });

  it('closes the client connection when the origin resets mid-response', async () => {
    const response = await rawExchange(proxy.port, `GET http://origin.test:${origin.port}/reset HTTP/1.1\r\nHost: origin.test\r\n\r\n`);
    expect(statusOf(response)).toBe(200);
    expect(response).toContain('partial');
    // The connection was closed (rawExchange returned on close) with far fewer bytes than announced.
    expect(response.length).toBeLessThan(10_000);
  });

  it('refuses egress to an address outside settings.proxy.egress', async () => {
    const res = await request('http://127.0.0.254/', { dispatcher: proxy.agent });
    expect(res.statusCode).toBe(403);
    expect(res.headers['x-leeway-reason']).toBe('LEEWAY_ERR_EGRESS_FORBIDDEN');
    await res.body.text();
  });

  it('serves the PAC file on the proxy port', async () => {
    const res = await request(`${proxy.proxyUrl}/proxy.pac`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('proxy-autoconfig');
    expect(await res.body.text()).toContain(`127.0.0.1:${proxy.port}`);
  });

  it('serves the PAC file on the admin port too, naming the proxy port (not the admin port)', async () => {
    const res = await request(`${proxy.adminUrl}/proxy.pac`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('proxy-autoconfig');
    const body = await res.body.text();
    expect(body).toContain(`PROXY 127.0.0.1:${proxy.port}`);
    expect(body).not.toContain(`:${new URL(proxy.adminUrl).port}`);
  });

  it('serves the privacy page on the proxy port', async () => {
    const res = await request(`${proxy.proxyUrl}/.leeway/privacy`);
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toMatch(/<html/);
  });

  it('answers /healthz and /readyz on the admin port', async () => {
    for (const path of ['/healthz', '/readyz']) {
      const res = await request(`${proxy.adminUrl}${path}`);
      expect(res.statusCode).toBe(200);
      await res.body.text();
    }
  });
});

describe('slow clients', () => {
  it('closes a connection whose request headers do not arrive within headersMs, without harming others', async () => {
    const local = await writeTestPolicy({ proxy: { timeouts: { headersMs: 300, idleMs: 1_000 } } });
    const strict = await startLeeway({ policies: local.dir });
    try {
      const started = Date.now();
      const slow = rawExchange(strict.port, `GET http://origin.test:${origin.port}/hello HTTP/1.1\r\nHost: orig`, { timeoutMs: 5_000 });
      const res = await request(`http://origin.test:${origin.port}/hello`, { dispatcher: strict.agent });
      expect(res.statusCode).toBe(200);
      await res.body.text();
      const answer = await slow;
      // Closed by the proxy with 408 well before our own 5 s guard.
      expect(Date.now() - started).toBeLessThan(4_000);
      expect(statusOf(answer)).toBe(408);
    } finally {
      await strict.close();
      await local.cleanup();
    }
  });

  it('answers a malformed request line with 400', async () => {
    const answer = await rawExchange(proxy.port, 'THIS IS NOT HTTP\r\n\r\n');
    expect(statusOf(answer)).toBe(400);
    const res = await request(`http://origin.test:${origin.port}/hello`, { dispatcher: proxy.agent });
    expect(res.statusCode).toBe(200);
    await res.body.text();
  });

  it('closes a client that stalls mid-upload after idleMs', async () => {
    const local = await writeTestPolicy({ proxy: { timeouts: { idleMs: 400 } } });
    const strict = await startLeeway({ policies: local.dir });
    try {
      const started = Date.now();
      const answer = await rawExchange(strict.port, `POST http://origin.test:${origin.port}/upload HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 1000\r\n\r\nonly-a-few-bytes`, { timeoutMs: 5_000 });
      expect(Date.now() - started).toBeLessThan(4_000);
      expect(statusOf(answer)).not.toBe(200);
    } finally {
      await strict.close();
      await local.cleanup();
    }
  });
});
