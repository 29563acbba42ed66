/**
 * The dashboards Leeway ships, how they are written to JSON, and how their queries are read back
 * (tests run every query against a real Prometheus, so extraction lives beside generation).
 */
import type { Dashboard, Panel, RowPanel } from '@grafana/schema';
import { acceptableUse } from './acceptable-use.js';
import { proxyOperations } from './proxy-operations.js';

export interface DashboardFile {
  /** File name under grafana/dashboards/. */
  readonly file: string;
  readonly dashboard: Dashboard;
}

export const DASHBOARDS: readonly DashboardFile[] = [
  { file: 'acceptable-use.json', dashboard: acceptableUse },
  { file: 'proxy-operations.json', dashboard: proxyOperations },
];

/** Stable text: two-space indent and a final newline, so regenerating an unchanged dashboard is a no-op in git. */
export function renderDashboardJson(dashboard: Dashboard): string {
  return `${JSON.stringify(dashboard, null, 2)}\n`;
}

export interface PanelQuery {
  readonly dashboard: string;
  readonly panel: string;
  readonly refId: string;
  readonly expr: string;
}

function isRow(panel: Panel | RowPanel): panel is RowPanel {
  return panel.type === 'row';
}

export function panelQueries(dashboard: Dashboard): PanelQuery[] {
  const out: PanelQuery[] = [];
  const visit = (panel: Panel): void => {
    for (const target of panel.targets ?? []) {
      const expr = target['expr'];
      if (typeof expr === 'string') {
        out.push({ dashboard: dashboard.uid ?? '', panel: panel.title ?? '', refId: String(target['refId']), expr });
      }
    }
  };
  for (const panel of dashboard.panels ?? []) {
    if (isRow(panel)) {
      panel.panels.forEach(visit);
    } else {
      visit(panel);
    }
  }
  return out;
}

/** Values a test (or a reader pasting a query into Prometheus) uses in place of Grafana's variables. */
export const DEFAULT_VARIABLE_VALUES: Readonly<Record<string, string>> = {
  __rate_interval: '1m',
  __interval: '15s',
  __range: '1h',
  group: '.*',
  category: '.*',
  leisure: 'social-leisure',
  business: 'business-networking',
};

/**
 * Replaces `$name`, `${name}` and `[[name]]` the way Grafana does before a query reaches
 * Prometheus. Unknown variables are left in place so a parse check catches them.
 */
export function substituteVariables(expr: string, values: Readonly<Record<string, string>> = DEFAULT_VARIABLE_VALUES): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g, (whole, braced?: string, bare?: string, bracketed?: string) => {
    const name = braced ?? bare ?? bracketed ?? '';
    return values[name] ?? whole;
  });
}
