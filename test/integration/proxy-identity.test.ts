/**
 * Who is asking (issue 3 item 6): client ACL, Basic proxy auth against htpasswd (407 flow,
 * remembered per connection for CONNECT), trusted header only from configured addresses.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { request, ProxyAgent } from 'undici';
import bcrypt from 'bcryptjs';
import { startOrigin } from '../helpers/origin.js';
import type { Origin } from '../helpers/origin.js';
import { STANDARD_CATEGORIES, writeTestPolicy } from '../helpers/policy.js';
import type { TestPolicy } from '../helpers/policy.js';
import { rawExchange, startLeeway, statusOf } from '../helpers/proxy.js';
import type { RunningLeeway } from '../helpers/proxy.js';

let origin: Origin;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  origin = await startOrigin();
});
afterAll(async () => {
  await origin.close();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(options: Parameters<typeof writeTestPolicy>[0]): Promise<{ proxy: RunningLeeway; policy: TestPolicy }> {
  const policy = await writeTestPolicy(options);
  cleanups.push(() => policy.cleanup());
  const proxy = await startLeeway({ policies: policy.dir });
  cleanups.push(() => proxy.close());
  return { proxy, policy };
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** Send requests one after another on one socket, returning each response head+body as text. */
function conversation(port: number, messages: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const answers: string[] = [];
    let buffer = '';
    let index = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`timeout; got ${JSON.stringify(answers)} + ${buffer}`));
    }, 5_000);
    const sendNext = (): void => {
      if (index === messages.length) {
        clearTimeout(timer);
        socket.destroy();
        return resolve(answers);
      }
      socket.write(messages[index++] as string);
    };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const headEnd = buffer.indexOf('\r\n\r\n');
      if (headEnd === -1) return;
      const length = /content-length: (\d+)/i.exec(buffer.slice(0, headEnd));
      const total = headEnd + 4 + (length === null ? 0 : Number(length[1]));
      if (buffer.length < total) return;
      answers.push(buffer.slice(0, total));
      buffer = buffer.slice(total);
      sendNext();
    });
    socket.on('error', reject);
    sendNext();
  });
}

describe('client ACL', () => {
  it('refuses a client outside settings.proxy.clients with 403', async () => {
    const { proxy } = await start({ proxy: { clients: ['10.0.0.0/8'] } });
    const res = await request(`http://origin.test:${origin.port}/hello`, { dispatcher: proxy.agent });
    expect(res.statusCode).toBe(403);
    expect(res.headers['x-leeway-reason']).toBe('LEEWAY_ERR_CLIENT_FORBIDDEN');
    await res.body.text();
    const connect = await rawExchange(proxy.port, `CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n`);
    expect(statusOf(connect)).toBe(403);
  });
});

describe('Basic proxy auth', () => {
  async function startWithAuth() {
    const hash = bcrypt.hashSync('s3cret', 4);
    return start({
      proxy: { auth: { htpasswd: 'users.htpasswd', required: true, realm: 'Test realm' }, connectPorts: [origin.port] },
      files: { 'users.htpasswd': `alice:${hash}\n` },
    });
  }

  it('challenges with 407, refuses a wrong password, accepts the right one', async () => {
    const { proxy } = await startWithAuth();
    const url = `http://origin.test:${origin.port}/headers`;
    // undici turns a 407 into an exception, so the refusals are read from raw sockets.
    const anonymous = await rawExchange(proxy.port, `GET ${url} HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n`);
    expect(statusOf(anonymous)).toBe(407);
    expect(anonymous).toMatch(/\r\nProxy-Authenticate: Basic realm="Test realm"/i);
    const refused = await rawExchange(proxy.port, `GET ${url} HTTP/1.1\r\nHost: origin.test\r\nProxy-Authorization: ${basic('alice', 'nope')}\r\nConnection: close\r\n\r\n`);
    expect(statusOf(refused)).toBe(407);
    const right = new ProxyAgent({ uri: proxy.proxyUrl, proxyTunnel: false, token: basic('alice', 's3cret') });
    try {
      const accepted = await request(url, { dispatcher: right });
      expect(accepted.statusCode).toBe(200);
      const seen = JSON.parse(await accepted.body.text()) as { headers: Record<string, string> };
      expect(seen.headers['proxy-authorization']).toBeUndefined();
    } finally {
      await right.close();
    }
  });

  it('remembers credentials per connection: a later CONNECT on it needs none', async () => {
    const { proxy } = await startWithAuth();
    const get = (auth: string) => `GET http://origin.test:${origin.port}/hello HTTP/1.1\r\nHost: origin.test\r\n${auth}\r\n`;
    const [first, second] = await conversation(proxy.port, [get(`Proxy-Authorization: ${basic('alice', 's3cret')}\r\n`), `CONNECT origin.test:${origin.port} HTTP/1.1\r\nHost: origin.test\r\n\r\n`]);
    expect(statusOf(first ?? '')).toBe(200);
    expect(statusOf(second ?? '')).toBe(200);
    // Another connection without credentials is challenged.
    const other = await rawExchange(proxy.port, `CONNECT origin.test:${origin.port} HTTP/1.1\r\nHost: origin.test\r\n\r\n`);
    expect(statusOf(other)).toBe(407);
  });
});

describe('trusted header', () => {
  const options = (from: string[]) => ({
    proxy: { trustedHeader: { name: 'X-Authenticated-User', from } },
    groups: { vip: { users: ['alice'] } },
    categories: STANDARD_CATEGORIES,
    rules: [{ id: 'vip-blocked', description: 'Test rule for a group.', group: 'vip', action: 'block', reason: 'Group rule applied.' }],
  });

  it('is used from a configured address, and is not forwarded', async () => {
    const { proxy } = await start(options(['127.0.0.1/32']));
    const blocked = await request(`http://origin.test:${origin.port}/headers`, { dispatcher: proxy.agent, headers: { 'x-authenticated-user': 'alice' } });
    expect(blocked.statusCode).toBe(403);
    expect(await blocked.body.text()).toContain('Group rule applied.');
    const other = await request(`http://origin.test:${origin.port}/headers`, { dispatcher: proxy.agent, headers: { 'x-authenticated-user': 'bob' } });
    expect(other.statusCode).toBe(200);
    const seen = JSON.parse(await other.body.text()) as { headers: Record<string, string> };
    expect(seen.headers['x-authenticated-user']).toBeUndefined();
  });

  it('is ignored from any other address', async () => {
    const { proxy } = await start(options(['10.1.2.3/32']));
    const res = await request(`http://origin.test:${origin.port}/hello`, { dispatcher: proxy.agent, headers: { 'x-authenticated-user': 'alice' } });
    expect(res.statusCode).toBe(200);
    await res.body.text();
  });
});
