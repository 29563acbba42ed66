/**
 * Template variables shared by the dashboards. Values for `group` and `category` come from the
 * metrics themselves, so they can only ever be labels Leeway already reported (groups below the
 * k-anonymity threshold are folded into `other` before they reach Prometheus).
 */
import type { VariableModel } from '@grafana/schema';
import { VariableHide, VariableRefresh, VariableSort } from '@grafana/schema';
import { PROMETHEUS } from './panels.js';

export function datasourceVariable(): VariableModel {
  return {
    name: 'datasource',
    label: 'Prometheus',
    type: 'datasource',
    query: 'prometheus',
    current: { text: 'Prometheus', value: 'leeway-prometheus' },
    hide: VariableHide.dontHide,
    refresh: VariableRefresh.onDashboardLoad,
    regex: '',
    options: [],
  };
}

/** A multi-select from a metric's label values, with "All" matching every value. */
export function labelVariable(name: string, label: string, metric: string, description: string): VariableModel {
  return {
    name,
    label,
    description,
    type: 'query',
    datasource: PROMETHEUS,
    query: { query: `label_values(${metric}, ${name})`, refId: `${name}-values` },
    refresh: VariableRefresh.onTimeRangeChanged,
    sort: VariableSort.alphabeticalAsc,
    multi: true,
    includeAll: true,
    allValue: '.*',
    current: { text: ['All'], value: ['$__all'] },
    hide: VariableHide.dontHide,
    options: [],
  };
}

/**
 * Which categories count as leisure or as business networking. Prometheus only sees category
 * names, not their kind, so the dashboard carries the mapping; the defaults are the bundled
 * policy's categories and a site with its own categories edits (or overrides in the URL) these.
 */
export function kindVariable(name: 'leisure' | 'business', label: string, categories: readonly string[], description: string): VariableModel {
  const first = categories[0] ?? '';
  return {
    name,
    label,
    description,
    type: 'custom',
    query: categories.join(','),
    multi: true,
    includeAll: false,
    allowCustomValue: true,
    current: { text: [first], value: [first] },
    options: categories.map((c, i) => ({ text: c, value: c, selected: i === 0 })),
    hide: VariableHide.dontHide,
  };
}
