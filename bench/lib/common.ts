/**
 * Pieces the benchmarks share. Files under bench/lib/ are helpers, not benchmarks: bench/run.ts
 * only runs the .ts files directly in bench/.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(fileURLToPath(import.meta.url), '..', '..', '..');

/** The median (mean of the two middle values for an even count); NaN for no values. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/**
 * True when dist/ holds a build at least as new as these sources (paths without extension under
 * src/). Benchmarks then run the shipped code: under tsx, esbuild's keep-names helper wraps every
 * closure the request path creates, a cost the built code does not have.
 */
export function distIsFresh(sources: readonly string[]): boolean {
  return sources.every((name) => {
    const built = join(repoRoot, 'dist', `${name}.js`);
    return existsSync(built) && statSync(built).mtimeMs >= statSync(join(repoRoot, 'src', `${name}.ts`)).mtimeMs;
  });
}

/** The first JSON line a child prints on stdout that `match` accepts (within 30 s). */
export function firstJsonLine(child: ChildProcess, match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error('child did not report in time')), 30_000);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (text: string) => {
      buffer += text;
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const raw of lines) {
        let line: Record<string, unknown>;
        try {
          line = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          continue; // not JSON: a plain log line
        }
        if (match(line)) {
          clearTimeout(timer);
          return resolve(line);
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited with ${code}`));
    });
  });
}

/** Node with `args`, confined to `core` with taskset (unpinned where taskset is missing). */
export function spawnNodeOn(core: 0 | 1, args: readonly string[], stdio: StdioOptions): ChildProcess {
  return existsSync('/usr/bin/taskset') ? spawn('/usr/bin/taskset', ['-c', String(core), process.execPath, ...args], { stdio }) : spawn(process.execPath, args, { stdio });
}
