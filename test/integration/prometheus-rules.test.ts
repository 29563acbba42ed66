import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const PROMTOOL = '/usr/bin/promtool';

async function promtool(...args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(PROMTOOL, args, { cwd: ROOT, timeout: 30_000 });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('prometheus/ files under promtool', () => {
  it('promtool check config accepts the example scrape config (and the rule file it names)', async () => {
    const r = await promtool('check', 'config', 'prometheus/prometheus.yml');
    expect(r.output).toContain('SUCCESS');
    expect(r.code, r.output).toBe(0);
  });

  it('promtool check rules accepts the recording and alert rules', async () => {
    const r = await promtool('check', 'rules', 'prometheus/rules/leeway.rules.yml');
    expect(r.output).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.code, r.output).toBe(0);
  });

  it('promtool test rules passes the rule unit tests', async () => {
    const r = await promtool('test', 'rules', 'prometheus/tests/leeway.rules.test.yml');
    expect(r.output).toContain('SUCCESS');
    expect(r.code, r.output).toBe(0);
  });

  it('promtool check rules rejects a broken rule file (the check is not a no-op)', async () => {
    const r = await promtool('check', 'rules', 'prometheus/prometheus.yml');
    expect(r.code).not.toBe(0);
  });
});
