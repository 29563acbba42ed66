/**
 * Shared by the accounting and privacy integration tests: 30 named users in 3 groups (board has
 * only 2, below k = 5) drive traffic through a real Leeway with Basic auth from an htpasswd file
 * made here and CIDR groups from 127.0.x.y client addresses (all of 127.0.0.0/8 is loopback on
 * Linux). Everything listens on 127.0.0.1, port 0.
 */
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import bcrypt from 'bcryptjs';
import { createUsageAccounting } from '../../src/accounting/leeway-accounting.js';
import type { UsageAccounting } from '../../src/accounting/leeway-accounting.js';
import { createLogger } from '../../src/log/logger.js';
import type { AccessLogMode } from '../../src/policy/types.js';
import { createLeeway } from '../../src/proxy/leeway.js';
import type { Leeway } from '../../src/proxy/leeway.js';

export interface TestUser {
  readonly name: string;
  readonly password: string;
  readonly group: 'board' | 'sales' | 'lab';
  readonly localAddress: string;
}

function users(): TestUser[] {
  const list: TestUser[] = [
    { name: 'alice-board', password: 'Board-secret-1', group: 'board', localAddress: '127.0.30.1' },
    { name: 'bob-board', password: 'Board-secret-2', group: 'board', localAddress: '127.0.30.2' },
  ];
  for (let i = 1; i <= 14; i += 1) list.push({ name: `sales-person-${i}`, password: `Sales-pw-${i}-x`, group: 'sales', localAddress: `127.0.10.${i + 1}` });
  for (let i = 1; i <= 14; i += 1) list.push({ name: `lab-person-${i}`, password: `Lab-pw-${i}-y`, group: 'lab', localAddress: `127.0.20.${i + 1}` });
  return list;
}

export const USERS: readonly TestUser[] = users();

/** Monday 2026-06-15, 10:00 in Paris: outside the fixture's breaks. */
export const T0 = Date.parse('2026-06-15T08:00:00Z');

/** A client outside settings.proxy.clients: refused, and the one address a log line may carry. */
export const OUTSIDER: TestUser = { name: 'outsider-person', password: 'Outsider-pw-z', group: 'lab', localAddress: '127.0.40.7' };

export const TEST_HOSTS = ['www.facebook.test', 'www.linkedin.test', 'unnamed-host.example'] as const;

function policyYaml(mode: AccessLogMode): string {
  return `settings:
  timeZone: Europe/Paris
  anonymity:
    minGroupSize: 5
  accessLog: ${mode}
  interception:
    enabled: false
  proxy:
    clients: [127.0.10.0/24, 127.0.20.0/24, 127.0.30.0/24]
    auth:
      htpasswd: users.htpasswd
      required: true
      realm: Leeway test
    hosts:
${TEST_HOSTS.map((host) => `      ${host}: 127.0.0.1`).join('\n')}

categories:
  business-networking:
    kind: business
    domains: [linkedin.test]
  social-leisure:
    kind: leisure
    domains: [facebook.test]

sites:
  facebook: [facebook.test]
  linkedin: [linkedin.test]

groups:
  board:
    users: [alice-board, bob-board]
  sales:
    networks: [127.0.10.0/24]
  lab:
    networks: [127.0.20.0/24]

rules:
  - id: business
    description: Business networking is part of the job.
    category: business-networking
    action: allow
  - id: social-budget
    description: Social networks share a daily budget of 3 minutes.
    category: social-leisure
    action: quota
    quota:
      minutesPerDay: 3
      per: category
      then: coach
    purposeQuestion: true

default:
  description: Everything else is allowed.
  action: allow
`;
}

export interface Harness {
  readonly dir: string;
  readonly leeway: Leeway;
  readonly usage: UsageAccounting;
  readonly origin: http.Server;
  readonly originPort: number;
  /** Paths (with query) the origin received. */
  readonly originSaw: string[];
  /** Every log line the proxy wrote. */
  readonly logLines: string[];
  /** Files present before the proxy started, with their modification times. */
  readonly inputFiles: ReadonlyMap<string, number>;
  setNow(at: number): void;
  get(user: TestUser, url: string): Promise<{ status: number; body: string }>;
  /** POST a form through the proxy (the coach page's Continue). */
  post(user: TestUser, url: string, form: string): Promise<{ status: number; body: string }>;
  scrape(path?: string): Promise<{ status: number; contentType: string; body: string }>;
  close(): Promise<void>;
}

export async function startHarness(mode: AccessLogMode): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'leeway-accounting-'));
  // Cost 4: the lowest bcrypt allows, so 30 users verify in milliseconds.
  const lines = await Promise.all(USERS.map(async (u) => `${u.name}:${await bcrypt.hash(u.password, 4)}`));
  await writeFile(join(dir, 'users.htpasswd'), `${lines.join('\n')}\n`);
  await writeFile(join(dir, 'policy.yaml'), policyYaml(mode));

  const originSaw: string[] = [];
  const origin = http.createServer((req, res) => {
    originSaw.push(req.url ?? '');
    const body = 'x'.repeat(1024);
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(body.length) });
    res.end(body);
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const originPort = (origin.address() as AddressInfo).port;

  const logLines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback): void {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logLines.push(line);
      callback();
    },
  });
  const logger = createLogger({ level: 'debug', destination });

  let now = T0;
  const clock = (): number => now;
  // Access lines through their own (unredacted, allow-listed) logger, as `leeway start` does.
  const usage = createUsageAccounting({ logger, clock, defaultMetrics: true, accessLogDestination: destination });
  const inputFiles = await listFiles(dir);
  const previousCwd = process.cwd();
  // The proxy runs with the temp dir as its working directory, so any file it writes lands there.
  process.chdir(dir);
  let leeway: Leeway;
  try {
    leeway = await createLeeway({ policies: dir, listen: '127.0.0.1:0', admin: '127.0.0.1:0', logger, clock, accounting: usage.accounting });
    usage.attach(leeway);
    await leeway.listen();
  } catch (error) {
    process.chdir(previousCwd);
    throw error;
  }
  const addresses = leeway.addresses;
  if (addresses?.admin === undefined) throw new Error('no admin listener');
  const proxyPort = addresses.proxy.port;
  const adminPort = addresses.admin.port;

  const send = (user: TestUser, method: string, url: string, form: string | undefined): Promise<{ status: number; body: string }> => {
    const target = new URL(url);
    const headers: Record<string, string> = { host: target.host, 'proxy-authorization': `Basic ${Buffer.from(`${user.name}:${user.password}`).toString('base64')}` };
    if (form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['content-length'] = String(Buffer.byteLength(form));
    }
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: proxyPort, localAddress: user.localAddress, method, path: url, agent: false, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      req.end(form);
    });
  };

  return {
    dir, leeway, usage, origin, originPort, originSaw, logLines, inputFiles,
    setNow(at: number): void {
      now = at;
    },
    get(user: TestUser, url: string) {
      return send(user, 'GET', url, undefined);
    },
    post(user: TestUser, url: string, form: string) {
      return send(user, 'POST', url, form);
    },
    scrape(path = '/metrics') {
      // Access lines wait up to ACCESS_LOG_MAX_DELAY_MS in a batch: write them before anyone reads the log.
      usage.flush();
      return new Promise((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: adminPort, path, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), body: Buffer.concat(chunks).toString('utf8') }));
        }).on('error', reject);
      });
    },
    async close() {
      try {
        await leeway.close(1000);
        await new Promise<void>((resolve) => origin.close(() => resolve()));
      } finally {
        process.chdir(previousCwd);
      }
    },
  };
}

/** Files the proxy wrote or changed in its working directory since it started. */
export async function filesWritten(h: Harness): Promise<string[]> {
  const after = await listFiles(h.dir);
  return [...after].filter(([file, mtime]) => h.inputFiles.get(file) !== mtime).map(([file]) => file);
}

export async function readAll(files: readonly string[]): Promise<string> {
  return (await Promise.all(files.map((file) => readFile(file, 'utf8')))).join('\n');
}

export async function removeHarnessDir(h: Harness): Promise<void> {
  await rm(h.dir, { recursive: true, force: true });
}

async function listFiles(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    out.set(file, (await stat(file)).mtimeMs);
  }
  return out;
}

/**
 * The standard day of traffic: minute 0 every user visits facebook (one by one, so the order in
 * which groups reach k is known), minute 1 every user visits facebook and linkedin, plus an
 * unnamed host. Every URL carries a path and query naming the user, for the privacy search.
 */
export async function driveTraffic(h: Harness): Promise<{ paths: string[]; queries: string[] }> {
  const paths: string[] = [];
  const queries: string[] = [];
  const url = (host: string, user: TestUser, page: string): string => {
    const path = `/${page}/${user.name}-private-page`;
    const query = `secret=${user.name}-token-${page}`;
    paths.push(path);
    queries.push(query);
    return `http://${host}:${h.originPort}${path}?${query}`;
  };
  h.setNow(T0);
  for (const user of USERS) expectOk(await h.get(user, url('www.facebook.test', user, 'feed')));
  h.setNow(T0 + 60_000);
  for (const user of USERS) {
    expectOk(await h.get(user, url('www.facebook.test', user, 'watch')));
    expectOk(await h.get(user, url('www.linkedin.test', user, 'in')));
    expectOk(await h.get(user, url('unnamed-host.example', user, 'misc')));
  }
  return { paths, queries };
}

function expectOk(response: { status: number; body: string }): void {
  if (response.status !== 200) throw new Error(`expected 200 through the proxy, got ${response.status}: ${response.body.slice(0, 200)}`);
}
