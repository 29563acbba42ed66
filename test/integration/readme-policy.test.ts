/** The policy example in README.md is a valid policy: docs that stop compiling fail the suite. */
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPolicy } from '../../src/policy/load.js';
import { decide } from '../../src/policy/decide.js';
import { NO_USAGE } from '../../src/policy/types.js';

const root = join(import.meta.dirname, '..', '..');
let dir: string | undefined;

afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('README policy example', () => {
  it('loads without problems and decides as the prose says', async () => {
    const readme = await readFile(join(root, 'README.md'), 'utf8');
    const example = /```yaml\n(# yaml-language-server[\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toBeDefined();
    dir = await mkdtemp(join(tmpdir(), 'leeway-readme-'));
    await mkdir(join(dir, 'lists'));
    await writeFile(join(dir, 'lists', 'malware.domains'), '# one domain a line\nevil.example\n');
    await writeFile(join(dir, 'policy.yaml'), example ?? '');
    const loaded = await loadPolicy(dir);
    expect(loaded.ok ? [] : loaded.errors).toEqual([]);
    if (!loaded.ok) return;
    const lunch = Date.parse('2026-11-26T12:30:00+01:00');
    expect(decide({ host: 'm.facebook.com', method: 'GET', path: '/', group: 'staff' }, loaded.policy, lunch, NO_USAGE).ruleId).toBe('social-at-lunch');
    expect(decide({ host: 'www.facebook.com', method: 'POST', path: '/groups/team', group: 'staff' }, loaded.policy, lunch, NO_USAGE).action.kind).toBe('suggest');
    expect(decide({ host: 'evil.example', method: 'GET', path: '/' }, loaded.policy, lunch, NO_USAGE).action.kind).toBe('block');
  });
});
