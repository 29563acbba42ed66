/**
 * Small typed builders for the panels our dashboards use. They only fill in Grafana's JSON
 * shapes (typed by @grafana/schema); every query and every threshold is chosen in the
 * dashboard files, so a reader sees the figures there and the plumbing here.
 */
import type { DataSourceRef, FieldConfigSource, Panel, RowPanel } from '@grafana/schema';
import { FieldColorModeId, ThresholdsMode } from '@grafana/schema';

/** Panels point at the dashboard's `datasource` variable so an imported copy can pick its Prometheus. */
export const PROMETHEUS: DataSourceRef = { type: 'prometheus', uid: '${datasource}' };

export interface Query {
  readonly expr: string;
  /** Grafana legend template, e.g. `{{group}}`. */
  readonly legend?: string;
  /** Instant queries suit stats, bar gauges and tables that show one figure per series. */
  readonly instant?: boolean;
}

export interface Step {
  readonly value: number | null;
  readonly color: string;
}

export interface Size {
  readonly w: number;
  readonly h: number;
}

interface PanelCommon {
  readonly title: string;
  readonly description: string;
  readonly size: Size;
  readonly queries: readonly Query[];
  readonly unit: string;
  readonly thresholds?: readonly Step[];
  readonly min?: number;
  readonly max?: number;
  readonly decimals?: number;
}

/** Green-only thresholds: a figure with no good or bad level still needs one step. */
export const NEUTRAL: readonly Step[] = [{ value: null, color: 'green' }];

function targets(queries: readonly Query[]): Array<Record<string, unknown>> {
  return queries.map((q, i) => ({
    refId: String.fromCharCode(65 + i),
    datasource: PROMETHEUS,
    expr: q.expr,
    legendFormat: q.legend ?? '__auto',
    range: q.instant !== true,
    instant: q.instant === true,
  }));
}

function fieldConfig(p: PanelCommon, custom: Record<string, unknown> = {}): FieldConfigSource {
  return {
    defaults: {
      unit: p.unit,
      ...(p.min === undefined ? {} : { min: p.min }),
      ...(p.max === undefined ? {} : { max: p.max }),
      ...(p.decimals === undefined ? {} : { decimals: p.decimals }),
      color: { mode: p.thresholds === undefined ? FieldColorModeId.PaletteClassic : FieldColorModeId.Thresholds },
      thresholds: { mode: ThresholdsMode.Absolute, steps: (p.thresholds ?? NEUTRAL).map((s) => ({ ...s })) },
      custom,
    },
    overrides: [],
  };
}

function base(type: string, p: PanelCommon): Panel {
  return {
    type,
    title: p.title,
    description: p.description,
    datasource: PROMETHEUS,
    gridPos: { x: 0, y: 0, w: p.size.w, h: p.size.h },
    targets: targets(p.queries),
  };
}

export function stat(p: PanelCommon): Panel {
  return {
    ...base('stat', p),
    fieldConfig: fieldConfig(p),
    options: {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      colorMode: 'value',
      graphMode: 'area',
      justifyMode: 'auto',
      orientation: 'auto',
      textMode: 'auto',
    },
  };
}

export function timeSeries(p: PanelCommon & { readonly stacked?: boolean }): Panel {
  return {
    ...base('timeseries', p),
    fieldConfig: fieldConfig(p, {
      drawStyle: 'line',
      lineWidth: 2,
      fillOpacity: p.stacked === true ? 30 : 10,
      showPoints: 'never',
      spanNulls: true,
      stacking: { mode: p.stacked === true ? 'normal' : 'none', group: 'A' },
      thresholdsStyle: { mode: p.thresholds === undefined ? 'off' : 'dashed' },
    }),
    options: {
      legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
      tooltip: { mode: 'multi', sort: 'desc' },
    },
  };
}

export function barGauge(p: PanelCommon): Panel {
  return {
    ...base('bargauge', p),
    fieldConfig: fieldConfig(p),
    options: {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      orientation: 'horizontal',
      displayMode: 'gradient',
      showUnfilled: true,
      valueMode: 'color',
      namePlacement: 'auto',
      sizing: 'auto',
    },
  };
}

export function pieChart(p: PanelCommon): Panel {
  return {
    ...base('piechart', p),
    fieldConfig: fieldConfig(p),
    options: {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      pieType: 'donut',
      displayLabels: ['name', 'percent'],
      legend: { displayMode: 'table', placement: 'right', showLegend: true, values: ['value', 'percent'] },
      tooltip: { mode: 'single', sort: 'none' },
    },
  };
}

export function table(p: PanelCommon): Panel {
  return {
    ...base('table', p),
    fieldConfig: fieldConfig(p),
    options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], fields: '' } },
    // One row per series with its labels as columns: the instant-vector shape a reader expects.
    transformations: [{ id: 'reduce', options: { reducers: ['lastNotNull'], labelsToFields: true } }],
  };
}

export function text(title: string, size: Size, markdown: string): Panel {
  return {
    type: 'text',
    title,
    gridPos: { x: 0, y: 0, w: size.w, h: size.h },
    options: { mode: 'markdown', content: markdown, code: { language: 'markdown', showLineNumbers: false, showMiniMap: false } },
  };
}

export function row(title: string): RowPanel {
  return { type: 'row', title, id: 0, collapsed: false, panels: [], gridPos: { x: 0, y: 0, w: 24, h: 1 } };
}

/**
 * Places panels left to right on Grafana's 24-column grid, wrapping when a row is full, and
 * numbers them; a row header always starts a new line. Keeps layout out of the dashboard files.
 */
export function layout(items: ReadonlyArray<Panel | RowPanel>): Array<Panel | RowPanel> {
  let x = 0;
  let y = 0;
  let lineHeight = 0;
  return items.map((item, index) => {
    const size = item.gridPos ?? { w: 24, h: 8 };
    if (item.type === 'row' || x + size.w > 24) {
      y += lineHeight;
      x = 0;
      lineHeight = 0;
    }
    const placed = { ...item, id: index + 1, gridPos: { x, y, w: size.w, h: size.h } };
    x += size.w;
    lineHeight = Math.max(lineHeight, size.h);
    if (item.type === 'row') {
      x = 24;
    }
    return placed;
  });
}
