#!/usr/bin/env node
/**
 * `leeway` command line. The dispatcher only chooses a command; each command lives in
 * src/cli/<name>.ts and exports `run(args: string[]): Promise<number>` (the exit code).
 */
import { pathToFileURL } from 'node:url';

interface CommandEntry {
  readonly summary: string;
  readonly usage: string;
  readonly load: () => Promise<{ run(args: string[]): Promise<number> }>;
}

export const COMMANDS: Readonly<Record<string, CommandEntry>> = {
  start: {
    summary: 'run the proxy',
    usage: 'leeway start [--policies DIR] [--listen HOST:PORT] [--admin HOST:PORT]',
    load: () => import('./cli/start.js'),
  },
  check: {
    summary: 'validate policies; print each error as file:line:col message',
    usage: 'leeway check [DIR]',
    load: () => import('./cli/check.js'),
  },
  explain: {
    summary: 'show what the policy decides for a request, and why',
    usage: 'leeway explain URL [--tunnel] [--user U] [--group G] [--client IP] [--at ISO-TIME] [--method M] [--minutes-used N] [--policies DIR] [--json]',
    load: () => import('./cli/explain.js'),
  },
  test: {
    summary: 'run the policy test cases written beside the policies',
    usage: 'leeway test [DIR]',
    load: () => import('./cli/test.js'),
  },
  ca: {
    summary: 'manage the interception root CA',
    usage: 'leeway ca init [--out certs/] [--name NAME] [--force]',
    load: () => import('./cli/ca.js'),
  },
};

export function helpText(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = ['Usage: leeway <command> [options]', '', 'Commands:'];
  for (const [name, entry] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(width)}  ${entry.summary}`);
  lines.push('', 'Usage of each command:');
  for (const entry of Object.values(COMMANDS)) lines.push(`  ${entry.usage}`);
  lines.push('', 'Every option of `leeway start` can also be set by an environment variable: LEEWAY_POLICIES, LEEWAY_LISTEN, LEEWAY_ADMIN, ...');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(helpText());
    return name === undefined ? 1 : 0;
  }
  if (name === '--version' || name === '-v') {
    const { readFile } = await import('node:fs/promises');
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    console.log(pkg.version);
    return 0;
  }
  const entry = COMMANDS[name];
  if (entry === undefined) {
    console.error(`leeway: unknown command "${name}"\n\n${helpText()}`);
    return 2;
  }
  const command = await entry.load();
  return command.run(args);
}

/** Run the CLI as a process: sets the exit code (a running `start` keeps the process alive). */
export async function runCli(argv: string[]): Promise<void> {
  try {
    const code = await main(argv);
    if (code !== -1) process.exitCode = code;
  } catch (error: unknown) {
    console.error(error instanceof Error ? `leeway: ${error.message}` : error);
    process.exitCode = 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void runCli(process.argv.slice(2));
}
