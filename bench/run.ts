/**
 * `npm run bench`: every benchmark in this folder, one after the other, each printing its own
 * figures as ratios against a baseline measured in the same run. Name benchmarks on the command
 * line to run only those (`npm run bench -- policy tls`).
 */
import { readdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = new Set(process.argv.slice(2));
const files = (await readdir(here)).filter((name) => name.endsWith('.ts') && name !== 'run.ts').sort();

for (const file of files) {
  const name = file.replace(/\.ts$/, '');
  if (wanted.size > 0 && !wanted.has(name)) continue;
  const module = (await import(pathToFileURL(join(here, file)).href)) as { run?: () => Promise<void> };
  if (typeof module.run !== 'function') continue;
  console.log(`\n=== bench/${file} ===`);
  await module.run();
}
