/**
 * Enforcement on plain HTTP (issue 3 items 7 and 8): block, coach → Continue → origin, suggest,
 * readonly; forged, replayed, other-site and other-person tokens refused; CONNECT needing a
 * page refused with X-Leeway-Reason while interception is unavailable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { ProxyAgent } from 'undici';
import { startOrigin } from '../helpers/origin.js';
import type { Origin } from '../helpers/origin.js';
import { STANDARD_CATEGORIES, writeTestPolicy } from '../helpers/policy.js';
import type { TestPolicy } from '../helpers/policy.js';
import { rawExchange, startLeeway, statusOf } from '../helpers/proxy.js';
import type { RunningLeeway } from '../helpers/proxy.js';
import { tokenIn } from '../helpers/via-proxy.js';

let origin: Origin;
let policy: TestPolicy;
let proxy: RunningLeeway;

beforeAll(async () => {
  origin = await startOrigin();
  // One coached site per test: acknowledgements are per person, and every test here is the same person.
  const coached = ['coach-a', 'coach-b', 'coach-c', 'coach-d', 'coach-e'];
  const hosts: Record<string, string> = {};
  for (const name of ['origin', 'block', 'readonly', 'suggest', 'suggest-b', ...coached]) hosts[`${name}.test`] = '127.0.0.1';
  policy = await writeTestPolicy({
    proxy: { connectPorts: [443, origin.port], hosts },
    categories: {
      ...STANDARD_CATEGORIES,
      forum: { description: 'Forum test hosts.', domains: ['suggest.test', 'suggest-b.test'] },
      social: { description: 'Social test hosts.', domains: coached.map((name) => `${name}.test`) },
    },
    sites: Object.fromEntries([...coached.map((name) => [name, [`${name}.test`]]), ['suggest', ['suggest.test']], ['suggest-b', ['suggest-b.test']]]),
  });
  proxy = await startLeeway({ policies: policy.dir });
});

afterAll(async () => {
  await proxy.close();
  await origin.close();
  await policy.cleanup();
});


/** Each test uses its own connection, hence its own agent, when identity matters. */
async function get(url: string, agent = proxy.agent, headers: Record<string, string> = {}) {
  const res = await request(url, { dispatcher: agent, headers });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

async function postContinue(host: string, token: string, agent = proxy.agent, choice = 'continue') {
  const res = await request(`http://${host}:${origin.port}/.leeway/continue`, {
    dispatcher: agent,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, choice }).toString(),
  });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

/** POST /.leeway/continue over a raw connection from a chosen client address (another address is another person). */
function rawContinue(port: number, host: string, token: string, localAddress: string): Promise<string> {
  const body = new URLSearchParams({ token, choice: 'continue' }).toString();
  return rawExchange(
    port,
    `POST http://${host}:${origin.port}/.leeway/continue HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    { localAddress },
  );
}

describe('enforcement on plain HTTP', () => {
  it('block: a 403 page with the rule reason, origin never reached', async () => {
    const before = origin.received.length;
    const page = await get(`http://block.test:${origin.port}/x`);
    expect(page.status).toBe(403);
    expect(page.body).toContain('Known bad test site.');
    expect(page.body).toContain('Dangerous test site.');
    expect(page.headers['x-leeway-reason']).toBe('block; rule=block-bad');
    expect(origin.received.length).toBe(before);
  });

  it('the privacy link on a page works on the page\'s host', async () => {
    const before = origin.received.length;
    const page = await get(`http://block.test:${origin.port}/.leeway/privacy`);
    expect(page.status).toBe(200);
    expect(page.body).toMatch(/<html/);
    expect(origin.received.length).toBe(before);
  });

  it('pages follow Accept-Language (French)', async () => {
    const page = await get(`http://block.test:${origin.port}/x`, proxy.agent, { 'accept-language': 'fr-FR,fr;q=0.9' });
    expect(page.body).toContain('lang="fr"');
  });

  it('coach: page, then Continue, then the origin page; later requests pass', async () => {
    const page = await get(`http://coach-a.test:${origin.port}/feed?x=1`);
    expect(page.status).toBe(403);
    expect(page.body).toContain('Social test site: mind the time.');
    const answer = await postContinue('coach-a.test', tokenIn(page.body));
    expect(answer.status).toBe(303);
    expect(answer.headers.location).toBe(`http://coach-a.test:${origin.port}/feed?x=1`);
    const after = await get(`http://coach-a.test:${origin.port}/feed?x=1`);
    expect(after.status).toBe(200);
    expect(after.body).toBe('path: /feed?x=1');
    // Acknowledged for this site only: another coached site still shows its page.
    expect((await get(`http://coach-e.test:${origin.port}/`)).status).toBe(403);
  });

  it('refuses a token used by another person (another client address)', async () => {
    const pageText = await rawExchange(proxy.port, `GET http://coach-d.test:${origin.port}/ HTTP/1.1\r\nHost: coach-d.test\r\nConnection: close\r\n\r\n`);
    const post = (localAddress: string) => rawContinue(proxy.port, 'coach-d.test', tokenIn(pageText), localAddress);
    expect(statusOf(await post('127.0.0.2'))).toBe(403);
    // Refused attempts do not burn the owner's token.
    expect(statusOf(await post('127.0.0.1'))).toBe(303);
  });

  it('refuses a forged token', async () => {
    const agent = new ProxyAgent({ uri: proxy.proxyUrl, proxyTunnel: false });
    try {
      const page = await get(`http://coach-b.test:${origin.port}/a`, agent);
      const token = tokenIn(page.body);
      const forged = `${token.slice(0, -4)}AAAA`;
      const answer = await postContinue('coach-b.test', forged, agent);
      expect(answer.status).toBe(403);
      expect(answer.headers['x-leeway-reason']).toBe('LEEWAY_ERR_TOKEN_INVALID');
      expect((await get(`http://coach-b.test:${origin.port}/a`, agent)).status).toBe(403);
    } finally {
      await agent.close();
    }
  });

  it('refuses a replayed token', async () => {
    const agent = new ProxyAgent({ uri: proxy.proxyUrl, proxyTunnel: false });
    try {
      const page = await get(`http://suggest.test:${origin.port}/b`, agent);
      const token = tokenIn(page.body);
      expect((await postContinue('suggest.test', token, agent)).status).toBe(303);
      const replay = await postContinue('suggest.test', token, agent);
      expect(replay.status).toBe(403);
      expect(replay.headers['x-leeway-reason']).toBe('LEEWAY_ERR_TOKEN_INVALID');
    } finally {
      await agent.close();
    }
  });

  it('refuses a token used for another site', async () => {
    const page = await get(`http://coach-c.test:${origin.port}/c`);
    const answer = await postContinue('coach-e.test', tokenIn(page.body));
    expect(answer.status).toBe(403);
    expect(answer.headers['x-leeway-reason']).toBe('LEEWAY_ERR_TOKEN_INVALID');
  });

  it('suggest: the alternative is the main choice and redirects to the internal tool', async () => {
    const page = await get(`http://suggest-b.test:${origin.port}/post`);
    expect(page.status).toBe(403);
    expect(page.body).toContain('Intranet forum');
    const answer = await postContinue('suggest-b.test', tokenIn(page.body), proxy.agent, 'alternative');
    expect(answer.status).toBe(303);
    expect(answer.headers.location).toBe('http://origin.test/intranet');
  });

  it('readonly: GET passes, POST gets a page', async () => {
    expect((await get(`http://readonly.test:${origin.port}/page`)).status).toBe(200);
    const res = await request(`http://readonly.test:${origin.port}/edit`, { dispatcher: proxy.agent, method: 'POST', body: 'x=1' });
    expect(res.statusCode).toBe(403);
    expect(res.headers['x-leeway-reason']).toBe('readonly; rule=readonly-wiki');
    await res.body.text();
  });

  it('CONNECT needing a page, without interception: 403 with X-Leeway-Reason', async () => {
    const response = await rawExchange(proxy.port, `CONNECT block.test:${origin.port} HTTP/1.1\r\nHost: block.test:${origin.port}\r\n\r\n`);
    expect(statusOf(response)).toBe(403);
    expect(response).toMatch(/X-Leeway-Reason: block; rule=block-bad/);
  });
});

describe('a Continue token across local midnight', () => {
  // The policy's zone is UTC: the clock starts ten seconds before midnight.
  let now = Date.parse('2026-03-10T23:59:50Z');
  let late: RunningLeeway;
  beforeAll(async () => {
    late = await startLeeway({ policies: policy.dir, clock: () => now });
  });
  afterAll(async () => {
    await late.close();
  });

  it('is still honoured just after midnight, when the person has a new pseudonym', async () => {
    const before = new ProxyAgent({ uri: late.proxyUrl, proxyTunnel: false });
    const page = await get(`http://coach-b.test:${origin.port}/evening`, before);
    await before.close();
    expect(page.status).toBe(403);
    now = Date.parse('2026-03-11T00:00:10Z');
    // A new connection, so the person is identified again, under the new day's pseudonym.
    const after = new ProxyAgent({ uri: late.proxyUrl, proxyTunnel: false });
    try {
      const answer = await postContinue('coach-b.test', tokenIn(page.body), after);
      expect(answer.status).toBe(303);
      // The acknowledgement is the new day's: the next request passes.
      expect((await get(`http://coach-b.test:${origin.port}/evening`, after)).status).toBe(200);
    } finally {
      await after.close();
    }
  });

  it('is refused to another person after midnight, and still the owner\'s', async () => {
    now = Date.parse('2026-03-11T23:59:55Z');
    const pageText = await rawExchange(late.port, `GET http://coach-d.test:${origin.port}/ HTTP/1.1\r\nHost: coach-d.test\r\nConnection: close\r\n\r\n`);
    now = Date.parse('2026-03-12T00:00:05Z');
    const post = (localAddress: string) => rawContinue(late.port, 'coach-d.test', tokenIn(pageText), localAddress);
    // Another client address is another person (the test policy identifies by network).
    expect(statusOf(await post('127.0.0.2'))).toBe(403);
    expect(statusOf(await post('127.0.0.1'))).toBe(303);
  });
});
