/**
 * A real Chromium through Leeway (issue 4): the browser gets the PAC file from the proxy, trusts
 * the test CA through an NSS db in a temporary HOME, opens https://social.test/, sees the coaching
 * page (intercepted TLS), clicks Continue and sees the origin's page. Screenshot saved to
 * test-artifacts/. Egress is limited to loopback and every other host is blocked by the policy
 * before any DNS lookup, so Chromium's background requests never leave the machine.
 */
import { execFileSync } from 'node:child_process';
import https from 'node:https';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.js';
import { caFromPem, generateCa, writeCa } from '../../src/tls/ca.js';
import { generateLeafKey, mintLeafCertificate } from '../../src/tls/leaf-certificate.js';
import { deferredInterceptor, setupInterception, type Interception } from '../../src/tls/interception.js';
import { writeTestPolicy, type TestPolicy } from '../helpers/policy.js';
import { startLeeway, type RunningLeeway } from '../helpers/proxy.js';

const ARTIFACTS = join(process.cwd(), 'test-artifacts');
const ORIGIN_TEXT = 'Welcome to the social test origin';

let dir: string;
let home: string;
let policy: TestPolicy;
let proxy: RunningLeeway;
let interception: Interception;
let origin: https.Server;
let originUrl: string;
let context: BrowserContext | undefined;
const originRequests: string[] = [];

/**
 * https://social.test/ means port 443: the origin listens there on a random loopback address
 * (127.x.y.z, so it cannot collide with anything on 127.0.0.1:443). Where binding port 443 is not
 * allowed it falls back to a free port and the URL names it; the flow tested is the same.
 */
async function listenOrigin(server: https.Server): Promise<{ address: string; port: number }> {
  const address = `127.${randomInt(1, 255)}.${randomInt(0, 255)}.${randomInt(1, 255)}`;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(443, address, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return { address, port: 443 };
  } catch {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { address: '127.0.0.1', port: (server.address() as AddressInfo).port };
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'leeway-e2e-'));
  home = join(dir, 'home');
  const leewayCa = generateCa({ name: 'Leeway E2E Interception CA' });
  const { certPath, keyPath } = await writeCa(join(dir, 'certs'), leewayCa);
  // The origin's certificate comes from another CA, standing for a public one.
  const originCa = generateCa({ name: 'E2E Public Root' });
  await writeFile(join(dir, 'origin-root.pem'), originCa.certPem);
  const originKey = generateLeafKey('ec');
  const originCert = mintLeafCertificate({ host: 'social.test', ca: caFromPem(originCa.certPem, originCa.keyPem), leafKey: originKey, now: Date.now() }).certPem;
  origin = https.createServer({ key: originKey.privateKeyPem, cert: originCert }, (req, res) => {
    originRequests.push(`${req.method ?? ''} ${req.url ?? ''}`);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>social.test</title><h1>${ORIGIN_TEXT}</h1>`);
  });
  const bound = await listenOrigin(origin);
  originUrl = bound.port === 443 ? 'https://social.test/' : `https://social.test:${bound.port}/`;

  // Chromium reads trust from the NSS db in $HOME/.pki/nssdb.
  const nssdb = join(home, '.pki', 'nssdb');
  await mkdir(nssdb, { recursive: true });
  execFileSync('certutil', ['-d', `sql:${nssdb}`, '-N', '--empty-password']);
  execFileSync('certutil', ['-d', `sql:${nssdb}`, '-A', '-t', 'C,,', '-n', 'leeway-e2e', '-i', certPath]);
  execFileSync('certutil', ['-d', `sql:${nssdb}`, '-A', '-t', 'C,,', '-n', 'origin-e2e', '-i', join(dir, 'origin-root.pem')]);

  policy = await writeTestPolicy({
    proxy: {
      connectPorts: [443, bound.port],
      hosts: { 'social.test': bound.address },
      egress: { allow: ['127.0.0.0/8', '::1/128'] },
    },
    settings: {
      interception: { enabled: true, doNotInspect: [] },
      tls: { caCert: certPath, caKey: keyPath, extraCaBundle: join(dir, 'origin-root.pem'), certCacheSize: 100 },
    },
    categories: { social: { description: 'Social test hosts.', kind: 'leisure', domains: ['social.test'] } },
    sites: { social: ['social.test'] },
    rules: [{ id: 'coach-social', description: 'Social test site: mind the time.', category: 'social', action: 'coach', continueMinutes: 15 }],
    // Everything else (Chromium's update and account hosts) is answered by the proxy, never resolved.
    default: { description: 'Only the test site is reachable in this test.', action: 'block', reason: 'Outside the test.' },
  });
  const interceptor = deferredInterceptor();
  proxy = await startLeeway({ policies: policy.dir, interceptor, logger: silentLogger() });
  const setUp = await setupInterception(proxy.leeway.policy.settings, { logger: silentLogger() });
  if (setUp === undefined) throw new Error('interception not configured');
  interception = setUp;
  interceptor.set(interception.interceptor);
});

afterAll(async () => {
  await context?.close();
  await proxy?.close();
  await new Promise<void>((resolve) => {
    if (origin === undefined) return resolve();
    origin.closeAllConnections();
    origin.close(() => resolve());
  });
  await policy?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

describe('Chromium through Leeway', () => {
  it('opens https://social.test/, sees the coaching page, clicks Continue and reaches the origin', async () => {
    context = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: '/usr/bin/chromium',
      headless: true,
      env: { ...process.env, HOME: home },
      args: [
        `--proxy-pac-url=${proxy.proxyUrl}/proxy.pac`,
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--no-default-browser-check',
        '--disable-features=OptimizationHints,MediaRouter,Translate,AutofillServerCommunication',
      ],
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const response = await page.goto(originUrl, { waitUntil: 'domcontentloaded', timeout: 30_000 });
    expect(response?.status()).toBe(403);
    await expect(page.getByText('A moment before you continue').first().isVisible()).resolves.toBe(true);
    expect(await page.content()).toContain('Social test site: mind the time.');
    // The page came through interception: the leaf for social.test was minted by Leeway's store.
    expect(interception.store.minted).toBeGreaterThanOrEqual(1);
    expect(originRequests).toEqual([]);

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'chromium-coach-page.png'), fullPage: true });

    await Promise.all([page.waitForURL(originUrl, { timeout: 30_000 }), page.getByRole('button', { name: /Continue to social\.test/ }).click()]);
    await page.getByText(ORIGIN_TEXT).waitFor({ timeout: 30_000 });
    expect(await page.title()).toBe('social.test');
    expect(originRequests).toContain('GET /');
    await page.screenshot({ path: join(ARTIFACTS, 'chromium-coach-continued.png'), fullPage: true });
  });
});
