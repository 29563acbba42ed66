#!/usr/bin/env node
// The published CLI runs the compiled code; `npm install` / `npm ci` build it (the `prepare` script).
let cli;
try {
  cli = await import('../dist/cli.js');
} catch (error) {
  if (error && error.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('cli.js')) {
    console.error('leeway: not built yet; run `npm run build` first.');
    process.exit(1);
  }
  throw error;
}
await cli.runCli(process.argv.slice(2));
