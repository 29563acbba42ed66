/**
 * Temporary policy folders for tests. Defaults keep all traffic on the machine: egress limited
 * to loopback, test host names (origin.test, coach.test, ...) mapped to 127.0.0.1 through
 * settings.proxy.hosts, interception off, UTC.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { loadPolicy } from '../../src/policy/load.js';
import type { CompiledPolicy } from '../../src/policy/types.js';

export const TEST_HOSTS = ['origin.test', 'coach.test', 'suggest.test', 'block.test', 'readonly.test', 'other.test', 'social.test'] as const;

export interface TestPolicyOptions {
  /** Merged over the default settings.proxy section. */
  readonly proxy?: Readonly<Record<string, unknown>>;
  /** Merged over the default top-level settings (timeZone, interception, ...). */
  readonly settings?: Readonly<Record<string, unknown>>;
  readonly categories?: Readonly<Record<string, unknown>>;
  readonly sites?: Readonly<Record<string, readonly string[]>>;
  readonly groups?: Readonly<Record<string, unknown>>;
  readonly rules?: readonly unknown[];
  readonly default?: Readonly<Record<string, unknown>>;
  /** Extra files written as is (e.g. `users.htpasswd`). */
  readonly files?: Readonly<Record<string, string>>;
}

export interface TestPolicy {
  readonly dir: string;
  /** Rewrite the folder (for reload tests); files not named stay as they are. */
  write(options: TestPolicyOptions): Promise<void>;
  /** Write one raw file (e.g. a broken rules.yaml). */
  writeRaw(name: string, text: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** A small policy with one rule per action, each on its own test host. */
export const STANDARD_RULES: readonly unknown[] = [
  { id: 'block-bad', description: 'Dangerous test site.', category: 'dangerous', action: 'block', reason: 'Known bad test site.' },
  { id: 'coach-social', description: 'Social test site: mind the time.', category: 'social', action: 'coach', continueMinutes: 15 },
  { id: 'suggest-forum', description: 'Use the internal forum.', category: 'forum', action: 'suggest', alternative: { name: 'Intranet forum', url: 'http://origin.test/intranet' }, continueMinutes: 10 },
  { id: 'readonly-wiki', description: 'Read-only test site.', category: 'wiki', action: 'readonly' },
];

export const STANDARD_CATEGORIES = {
  dangerous: { description: 'Dangerous test hosts.', domains: ['block.test'] },
  social: { description: 'Social test hosts.', kind: 'leisure', domains: ['coach.test', 'social.test'] },
  forum: { description: 'Forum test hosts.', domains: ['suggest.test'] },
  wiki: { description: 'Wiki test hosts.', domains: ['readonly.test'] },
};

function files(options: TestPolicyOptions): Record<string, string> {
  const hosts: Record<string, string> = {};
  for (const host of TEST_HOSTS) hosts[host] = '127.0.0.1';
  const settings = {
    timeZone: 'UTC',
    interception: { enabled: false },
    accessLog: 'anonymous',
    ...options.settings,
    proxy: {
      clients: ['127.0.0.0/8', '::1/128'],
      egress: { allow: ['127.0.0.0/8', '::1/128'] },
      hosts,
      ...options.proxy,
    },
  };
  const out: Record<string, string> = {
    'settings.yaml': stringify({ settings }),
    'categories.yaml': stringify({ categories: options.categories ?? STANDARD_CATEGORIES, ...(options.sites === undefined ? { sites: { social: ['coach.test', 'social.test'] } } : { sites: options.sites }) }),
    'rules.yaml': stringify({ rules: options.rules ?? STANDARD_RULES, default: options.default ?? { description: 'Everything else is allowed.', action: 'allow' } }),
  };
  if (options.groups !== undefined) out['groups.yaml'] = stringify({ groups: options.groups });
  return { ...out, ...options.files };
}

export async function writeTestPolicy(options: TestPolicyOptions = {}): Promise<TestPolicy> {
  const dir = await mkdtemp(join(tmpdir(), 'leeway-policy-'));
  const write = async (o: TestPolicyOptions): Promise<void> => {
    for (const [name, text] of Object.entries(files(o))) await writeFile(join(dir, name), text);
  };
  await write(options);
  return {
    dir,
    write,
    writeRaw: (name, text) => writeFile(join(dir, name), text),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Load a policy folder under test/fixtures/ (reads files only: fine for unit tests). */
export async function loadFixturePolicy(name: string): Promise<CompiledPolicy> {
  const loaded = await loadPolicy(fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url)));
  if (!loaded.ok) throw new Error(loaded.errors.map((e) => e.message).join('\n'));
  return loaded.policy;
}
