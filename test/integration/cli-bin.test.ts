/**
 * The installed command (`bin/leeway.js`, what `npx leeway` runs) really runs the compiled CLI.
 * `npm test` builds dist/ first; this guards the bin wrapper itself, which unit tests of main() miss.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'bin', 'leeway.js');

describe('bin/leeway.js', () => {
  it('checks the bundled policies and prints the one-line summary', async () => {
    const { stdout } = await run(process.execPath, [bin, 'check', join(root, 'policies')], { cwd: root });
    expect(stdout).toMatch(/^ok: \d+ files, \d+ categories, \d+ domains, \d+ rules$/m);
  });

  it('exits 1 with file:line:col errors for an invalid policy folder', async () => {
    const error = await run(process.execPath, [bin, 'check', join(root, 'test', 'fixtures', 'invalid-policies', 'duplicate-rule-id')], { cwd: root }).then(
      () => undefined,
      (e: unknown) => e as { code: number; stdout: string; stderr: string },
    );
    expect(error?.code).toBe(1);
    expect(`${error?.stdout}${error?.stderr}`).toMatch(/\.yaml:\d+:\d+ /);
  });

  it('prints the help listing every command', async () => {
    const { stdout } = await run(process.execPath, [bin, '--help'], { cwd: root });
    for (const command of ['start', 'check', 'explain', 'test', 'ca init']) expect(stdout).toContain(`leeway ${command}`);
  });
});
