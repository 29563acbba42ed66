/**
 * Policy engine speed: decisions per second on the bundled policy and on a generated policy with
 * 100,000 domains and 200 rules, and the time to load and compile that policy (issue 2 targets:
 * ≥ 1,000,000 decisions/s on one core, load + compile < 1 s). The baseline, measured in the same
 * run, is a bare Map lookup of each host: the cost floor of any classification.
 */
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { decide } from '../src/policy/decide.js';
import { loadPolicy } from '../src/policy/load.js';
import type { CompiledPolicy, RequestFacts, UsageView } from '../src/policy/types.js';

const DOMAINS = 100_000;
const CATEGORIES = 200;
const RULES = 200;
const DECISIONS = 1_000_000;
const ROUNDS = 5;

// Deterministic pseudo-random numbers, so every run measures the same requests.
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

export async function writeGeneratedPolicy(dir: string): Promise<void> {
  await mkdir(join(dir, 'lists'));
  const perCategory = DOMAINS / CATEGORIES;
  const categories: string[] = [];
  for (let c = 0; c < CATEGORIES; c++) {
    const lines = ['# generated'];
    for (let d = 0; d < perCategory; d++) lines.push(`site${d}-c${c}.example`);
    await writeFile(join(dir, 'lists', `c${c}.domains`), lines.join('\n'));
    categories.push(`  c${c}:\n    kind: ${c % 3 === 0 ? 'leisure' : 'other'}\n    lists: [lists/c${c}.domains]`);
  }
  const rules: string[] = [];
  for (let r = 0; r < RULES; r++) {
    const lines = [`  - id: r${r}`, `    description: Generated rule ${r}.`, `    category: c${r % CATEGORIES}`];
    if (r % 4 === 1) lines.push('    group: staff');
    if (r % 5 === 2) lines.push('    schedule: lunch');
    if (r % 7 === 3) lines.push('    method: POST', '    path: /groups/*');
    switch (r % 4) {
      case 0:
        lines.push('    action: allow');
        break;
      case 1:
        lines.push('    action: coach', '    continueMinutes: 10');
        break;
      case 2:
        lines.push('    action: quota', '    quota: { minutesPerDay: 60, then: coach }');
        break;
      default:
        lines.push('    action: block', '    reason: Generated.');
    }
    rules.push(lines.join('\n'));
  }
  const yaml = [
    'settings:\n  timeZone: Europe/Paris',
    `categories:\n${categories.join('\n')}`,
    'sites:\n  site0: [site0-c0.example]\n  site1: [site1-c1.example]',
    'groups:\n  staff: { networks: [10.0.0.0/8] }\n  sales: { networks: [10.20.0.0/16] }',
    'schedules:\n  lunch:\n    ranges:\n      - { days: [mon, tue, wed, thu, fri], from: "12:00", to: "14:00" }',
    `rules:\n${rules.join('\n')}`,
  ].join('\n');
  await writeFile(join(dir, 'policy.yaml'), yaml);
}

function makeRequests(count: number, hostFor: (random: () => number) => string): RequestFacts[] {
  const random = lcg(42);
  const methods = ['GET', 'GET', 'GET', 'POST'];
  const requests: RequestFacts[] = [];
  for (let i = 0; i < count; i++) {
    const group = random() < 0.5 ? 'staff' : 'sales';
    // One in four is a CONNECT not yet intercepted (no method or path).
    if (random() < 0.25) requests.push({ host: hostFor(random), group });
    else requests.push({ host: hostFor(random), group, method: methods[Math.floor(random() * 4)] ?? 'GET', path: random() < 0.3 ? '/groups/x' : '/' });
  }
  return requests;
}

interface Rate {
  readonly perSecond: number;
  readonly checksum: number;
}

/** Median of ROUNDS timed loops over the same requests. */
function measure(requests: readonly RequestFacts[], body: (facts: RequestFacts) => number, decisions = DECISIONS): Rate {
  const rates: number[] = [];
  let checksum = 0;
  for (let i = 0; i < decisions / 10; i++) checksum += body(requests[i % requests.length] as RequestFacts);
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < decisions; i++) checksum += body(requests[i % requests.length] as RequestFacts);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    rates.push(decisions / seconds);
  }
  rates.sort((a, b) => a - b);
  return { perSecond: rates[Math.floor(rates.length / 2)] ?? 0, checksum };
}

function decideRate(policy: CompiledPolicy, requests: readonly RequestFacts[], now: number, usage: UsageView): Rate {
  return measure(requests, (facts) => decide(facts, policy, now, usage).ruleId.length);
}

function baselineRate(requests: readonly RequestFacts[]): Rate {
  const map = new Map<string, number>();
  for (const facts of requests) map.set(facts.host, facts.host.length);
  return measure(requests, (facts) => map.get(facts.host) ?? 0);
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

export async function run(): Promise<void> {
  const usage: UsageView = { minutesUsedToday: (scope) => scope.name.length * 3 };
  const now = Date.parse('2026-11-26T10:30:00+01:00');

  const bundled = await loadPolicy(new URL('../policies', import.meta.url).pathname);
  if (!bundled.ok) throw new Error('bundled policy does not load');
  const bundledHosts = ['www.facebook.com', 'www.linkedin.com', 'www.paypal.com', 'malware.example', 'www.example.org', 'm.youtube.com', 'x.com', 'news.example.net'];
  const bundledRequests = makeRequests(10_000, (random) => bundledHosts[Math.floor(random() * bundledHosts.length)] ?? 'x.com');
  const bundledBaseline = baselineRate(bundledRequests);
  const bundledRate = decideRate(bundled.policy, bundledRequests, now, usage);

  const dir = await mkdtemp(join(tmpdir(), 'leeway-bench-policy-'));
  try {
    await writeGeneratedPolicy(dir);
    const loadTimes: number[] = [];
    let large: CompiledPolicy | undefined;
    for (let round = 0; round < 3; round++) {
      const start = process.hrtime.bigint();
      const loaded = await loadPolicy(dir);
      loadTimes.push(Number(process.hrtime.bigint() - start) / 1e6);
      if (!loaded.ok) throw new Error(`generated policy does not load: ${JSON.stringify(loaded.errors.slice(0, 3))}`);
      large = loaded.policy;
    }
    if (large === undefined) return;
    // Hosts: 70 % under a listed domain (sub-domains of varying depth), 30 % unknown.
    const largeRequests = makeRequests(50_000, (random) => {
      if (random() < 0.3) return `www.unknown${Math.floor(random() * 1000)}.example.org`;
      const c = Math.floor(random() * CATEGORIES);
      const d = Math.floor(random() * (DOMAINS / CATEGORIES));
      return random() < 0.5 ? `site${d}-c${c}.example` : `cdn.img.site${d}-c${c}.example`;
    });
    const largeBaseline = baselineRate(largeRequests);
    const largeRate = decideRate(large, largeRequests, now, usage);
    // Every host new: the classification memo never hits, so each decision walks the suffix index.
    const coldRequests = makeRequests(500_000, (random) => `h${Math.floor(random() * 1e9)}.site${Math.floor(random() * 500)}-c${Math.floor(random() * CATEGORIES)}.example`);
    const coldRate = measure(coldRequests, (facts) => decide(facts, large, now, usage).ruleId.length, 500_000);
    const fullTraceRate = measure(largeRequests.slice(0, 5_000), (facts) => decide(facts, large, now, usage, { fullTrace: true }).trace.length, 20_000);

    console.log(`policy engine, median of ${ROUNDS} rounds of ${fmt(DECISIONS)} decisions, one core`);
    console.log(`  bundled policy (${bundled.policy.stats.rules} rules):              ${fmt(bundledRate.perSecond)} decisions/s  (bare Map lookup ${fmt(bundledBaseline.perSecond)}/s, ratio ${(bundledRate.perSecond / bundledBaseline.perSecond).toFixed(2)})`);
    console.log(`  generated (${fmt(large.stats.domains)} domains, ${large.stats.rules} rules): ${fmt(largeRate.perSecond)} decisions/s  (bare Map lookup ${fmt(largeBaseline.perSecond)}/s, ratio ${(largeRate.perSecond / largeBaseline.perSecond).toFixed(2)})  target ≥ 1,000,000: ${largeRate.perSecond >= 1_000_000 ? 'met' : 'MISSED'}`);
    console.log(`  generated, every host new (memo misses):  ${fmt(coldRate.perSecond)} decisions/s`);
    console.log(`  generated, fullTrace (explain/test):       ${fmt(fullTraceRate.perSecond)} decisions/s`);
    const sortedLoads = [...loadTimes].sort((a, b) => a - b);
    const loadMedian = sortedLoads[1] ?? 0;
    console.log(`  load + compile generated policy (first run includes the schema compile): median ${loadMedian.toFixed(0)} ms of ${loadTimes.map((t) => t.toFixed(0)).join(' / ')} ms  target < 1000 ms: ${loadMedian < 1000 ? 'met' : 'MISSED'}`);
    // Keeps the loops from being optimised away.
    if (bundledRate.checksum + coldRate.checksum + largeRate.checksum + fullTraceRate.checksum + bundledBaseline.checksum + largeBaseline.checksum === -1) console.log('');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run();
}
