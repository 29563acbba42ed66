/**
 * Writes the dashboards' JSON from their TypeScript sources: `npm run dashboards`.
 * The JSON is committed (Grafana provisioning reads it); a unit test fails when it is stale.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DASHBOARDS, renderDashboardJson } from './src/dashboards.js';

const outDir = join(dirname(fileURLToPath(import.meta.url)), 'dashboards');
mkdirSync(outDir, { recursive: true });
for (const { file, dashboard } of DASHBOARDS) {
  writeFileSync(join(outDir, file), renderDashboardJson(dashboard));
  console.log(`wrote grafana/dashboards/${file}`);
}
