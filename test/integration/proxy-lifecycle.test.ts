/**
 * The real `leeway start` in a child process (issue 3 items 1 and 11): port 0 with the bound
 * addresses in a log line, SIGHUP with a broken policy keeps the old one (and logs file:line:col),
 * SIGHUP with a good one applies it, SIGTERM drains in-flight requests and exits 0.
 */
import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { request, ProxyAgent } from 'undici';
import { writeTestPolicy, STANDARD_RULES } from '../helpers/policy.js';
import type { TestPolicy } from '../helpers/policy.js';
import { spawnLeeway } from '../helpers/proxy.js';
import type { SpawnedLeeway } from '../helpers/proxy.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An origin whose /slow answers after `delayMs`. */
async function slowOrigin(delayMs: number): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const body = `done ${req.url}`;
    setTimeout(() => res.end(body), req.url === '/slow' ? delayMs : 0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function setup(): Promise<{ policy: TestPolicy; leeway: SpawnedLeeway; agent: ProxyAgent; originPort: number }> {
  const origin = await slowOrigin(800);
  cleanups.push(() => origin.close());
  const policy = await writeTestPolicy({ proxy: { timeouts: { drainMs: 5_000 } } });
  cleanups.push(() => policy.cleanup());
  const leeway = await spawnLeeway(policy.dir);
  cleanups.push(() => {
    if (leeway.child.exitCode === null) leeway.kill('SIGKILL');
  });
  const agent = new ProxyAgent({ uri: `http://127.0.0.1:${leeway.port}`, proxyTunnel: false });
  cleanups.push(() => agent.close());
  return { policy, leeway, agent, originPort: origin.port };
}

async function statusThrough(agent: ProxyAgent, url: string): Promise<number> {
  const res = await request(url, { dispatcher: agent });
  await res.body.text();
  return res.statusCode;
}

describe('leeway start', () => {
  it('logs the bound addresses and answers /readyz', async () => {
    const { leeway } = await setup();
    expect(leeway.port).toBeGreaterThan(0);
    const res = await request(`http://127.0.0.1:${leeway.adminPort}/readyz`);
    expect(res.statusCode).toBe(200);
    await res.body.text();
  });

  it('SIGHUP with a broken policy keeps the old one and logs file:line:col; a good one applies', async () => {
    const { policy, leeway, agent, originPort } = await setup();
    const url = `http://origin.test:${originPort}/x`;
    expect(await statusThrough(agent, url)).toBe(200);

    await policy.writeRaw('rules.yaml', 'rules:\n  - id: broken\n    action: explode\n');
    leeway.kill('SIGHUP');
    const failure = await leeway.waitForLine((line) => typeof line.problem === 'string' && String(line.msg).includes('reload failed'));
    expect(String(failure.problem)).toMatch(/rules\.yaml:\d+:\d+ /);
    expect(await statusThrough(agent, url)).toBe(200);
    expect(await statusThrough(agent, `http://block.test:${originPort}/x`)).toBe(403);

    await policy.write({
      rules: [...STANDARD_RULES, { id: 'block-origin', description: 'Now blocked.', category: 'origin', action: 'block', reason: 'Reloaded.' }],
      categories: {
        dangerous: { domains: ['block.test'] },
        social: { domains: ['coach.test'] },
        forum: { domains: ['suggest.test'] },
        wiki: { domains: ['readonly.test'] },
        origin: { domains: ['origin.test'] },
      },
    });
    leeway.kill('SIGHUP');
    await leeway.waitForLine((line) => line.msg === 'policy reloaded');
    expect(await statusThrough(agent, url)).toBe(403);
  });

  it('SIGTERM lets an in-flight request finish, then exits 0', async () => {
    const { leeway, agent, originPort } = await setup();
    const inFlight = request(`http://origin.test:${originPort}/slow`, { dispatcher: agent });
    // Let the request reach the origin before stopping.
    await new Promise((resolve) => setTimeout(resolve, 200));
    leeway.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 150));
    // No longer accepting: a new connection is refused while the old request is still running.
    const fresh = new ProxyAgent({ uri: `http://127.0.0.1:${leeway.port}`, proxyTunnel: false });
    cleanups.push(() => fresh.close());
    await expect(request(`http://origin.test:${originPort}/x`, { dispatcher: fresh })).rejects.toThrow();
    const res = await inFlight;
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('done /slow');
    expect(await leeway.exited).toBe(0);
    // Both lines of the shutdown, in the order logged: the last ones are not raced against the exit.
    const messages = leeway.lines.map((line) => line.msg);
    const stopping = messages.indexOf('stopping: draining in-flight requests');
    expect(stopping).toBeGreaterThanOrEqual(0);
    expect(messages.indexOf('leeway stopped')).toBeGreaterThan(stopping);
  });

  it('logs its shutdown in order, its last line included, when stopped as soon as it listens', async () => {
    const policy = await writeTestPolicy({});
    cleanups.push(() => policy.cleanup());
    // Three times: a line still in an asynchronous write at exit used to land after the next one
    // (two times in three on a pipe).
    for (let run = 0; run < 3; run += 1) {
      const leeway = await spawnLeeway(policy.dir, { LEEWAY_LOG_LEVEL: 'info' });
      cleanups.push(() => {
        if (leeway.child.exitCode === null) leeway.kill('SIGKILL');
      });
      leeway.kill('SIGTERM');
      expect(await leeway.exited).toBe(0);
      expect(leeway.lines.map((line) => line.msg).slice(-2)).toEqual(['stopping: draining in-flight requests', 'leeway stopped']);
    }
  });

  it('writes every request\'s access line on stdout before it exits on SIGTERM, the last ones included', async () => {
    const { leeway, agent, originPort } = await setup();
    const count = 40;
    for (let i = 0; i < count; i += 1) expect(await statusThrough(agent, `http://origin.test:${originPort}/page-${i}`)).toBe(200);
    // At once: the last lines are still held in their batch (written within ACCESS_LOG_MAX_DELAY_MS otherwise).
    leeway.kill('SIGTERM');
    expect(await leeway.exited).toBe(0);
    const access = leeway.lines.filter((line) => line.log === 'access');
    expect(access).toHaveLength(count);
    for (const line of access) expect(line).toMatchObject({ msg: 'access', status: 200, action: 'allow', kind: 'http' });
    // Anonymous by default: no path reaches the log.
    expect(JSON.stringify(access)).not.toMatch(/page-/);
  });
});
