/**
 * The "Acceptable use overview" dashboard: answers "is misuse marginal?" and, beside it,
 * "is networking an investment?" from the anonymous figures of issue 5. Every query aggregates
 * at least to a k-anonymous group; none can name a person, because no metric carries one.
 */
import type { Dashboard } from '@grafana/schema';
import { DashboardCursorSync } from '@grafana/schema';
import { barGauge, layout, NEUTRAL, pieChart, row, stat, text, timeSeries, type Step } from './panels.js';
import { datasourceVariable, kindVariable, labelVariable } from './variables.js';

const G = 'group=~"$group"';
const C = 'category=~"$category"';
const LEISURE = 'category=~"$leisure"';
const BUSINESS = 'category=~"$business"';

/** Share of browsing minutes: below a quarter is the "marginal" the essay speaks of. */
const SHARE_STEPS: readonly Step[] = [
  { value: null, color: 'green' },
  { value: 0.25, color: 'orange' },
  { value: 0.4, color: 'red' },
];
/** Daily leisure minutes per person: a coffee-break budget is about 30 to 60 minutes. */
const LEISURE_MINUTES_STEPS: readonly Step[] = [
  { value: null, color: 'green' },
  { value: 45, color: 'orange' },
  { value: 90, color: 'red' },
];
/** Business networking time is an investment: more is not a warning. */
const BUSINESS_STEPS: readonly Step[] = [
  { value: null, color: 'blue' },
  { value: 15, color: 'green' },
];

function share(categories: string, range: string): string {
  return (
    `sum(increase(leeway_active_minutes_total{${categories}, ${G}}[${range}]))` +
    ` / sum(increase(leeway_browsing_minutes_total{${G}}[${range}]))`
  );
}

/**
 * Person-minutes over the trailing day divided by everyone who browsed today, as the status page
 * divides, so both show the same "minutes per active person".
 */
function minutesPerPerson(categories: string, by = ''): string {
  const grouping = by === '' ? '' : ` by (${by})`;
  return (
    `sum${grouping} (increase(leeway_active_minutes_total{${categories}, ${G}}[1d]))` +
    ` / sum${grouping} (leeway_people_browsing{${G}})`
  );
}

function pageRatio(page: string, outcome: string): string {
  return (
    `sum(increase(leeway_pages_total{page="${page}", outcome="${outcome}", ${C}}[$__range]))` +
    ` / sum(increase(leeway_pages_total{page="${page}", outcome="shown", ${C}}[$__range]))`
  );
}

const ABOUT = `### What these figures mean

* **Leisure share**: person-minutes on the categories chosen in *Leisure categories* divided by all
  person-minutes of browsing. A person-minute counts when someone sent at least one request to a site
  during that minute; a background tab that only receives data does not count. Each minute of
  browsing counts once in the denominator, however many sites it touched.
* **Minutes per active person**: person-minutes over the last 24 hours divided by the number of people
  who browsed at all today, as on Leeway's status page: the average person's day, including those who
  never visited those categories.
* **Pages**: coach, suggest and block pages shown, and what happened next (continued, took the internal
  alternative). **Purpose answers** are the optional "business or a break?" question, counted in aggregate.

### What is never recorded

No user name, client address, pseudonym, URL path or query string is ever a metric label. Groups with
fewer active people than the policy's anonymity threshold (default 5) are reported only inside \`other\`.
Nothing here can show what one person did; that is by design (GDPR minimisation, CNIL guidance).`;

export const acceptableUse = {
  uid: 'leeway-acceptable-use',
  title: 'Leeway: acceptable use overview',
  description: 'Is misuse marginal? Is networking an investment? Anonymous, k-anonymous aggregates only.',
  tags: ['leeway', 'acceptable-use'],
  editable: true,
  graphTooltip: DashboardCursorSync.Crosshair,
  schemaVersion: 39,
  version: 1,
  refresh: '1m',
  time: { from: 'now-7d', to: 'now' },
  timepicker: {},
  timezone: 'browser',
  annotations: { list: [] },
  links: [],
  templating: {
    list: [
      datasourceVariable(),
      labelVariable('group', 'Group', 'leeway_browsing_minutes_total', 'Policy groups with at least k active people; smaller ones are in "other".'),
      labelVariable('category', 'Category', 'leeway_active_minutes_total', 'Categories for the pages, purpose and quota panels.'),
      kindVariable('leisure', 'Leisure categories', ['social-leisure'], 'Categories counted as leisure in the headline.'),
      kindVariable('business', 'Business networking categories', ['business-networking'], 'Categories counted as business networking.'),
    ],
  },
  panels: layout([
    row('Headline'),
    stat({
      title: 'Leisure share of browsing time',
      description: 'Person-minutes on leisure categories out of all browsing person-minutes, over the selected period.',
      size: { w: 6, h: 6 },
      unit: 'percentunit',
      decimals: 1,
      min: 0,
      max: 1,
      thresholds: SHARE_STEPS,
      queries: [{ expr: share(LEISURE, '$__range'), legend: 'leisure share', instant: true }],
    }),
    stat({
      title: 'Business networking share of browsing time',
      description: 'Person-minutes on business networking categories out of all browsing person-minutes, over the selected period.',
      size: { w: 6, h: 6 },
      unit: 'percentunit',
      decimals: 1,
      min: 0,
      max: 1,
      thresholds: NEUTRAL,
      queries: [{ expr: share(BUSINESS, '$__range'), legend: 'business networking share', instant: true }],
    }),
    stat({
      title: 'Leisure minutes per active person (24 h)',
      description: 'Leisure person-minutes over the last 24 hours per person who browsed today (the status page\'s definition).',
      size: { w: 6, h: 6 },
      unit: 'm',
      decimals: 0,
      thresholds: LEISURE_MINUTES_STEPS,
      queries: [{ expr: minutesPerPerson(LEISURE), legend: 'leisure', instant: true }],
    }),
    stat({
      title: 'Business networking minutes per active person (24 h)',
      description: 'Business networking person-minutes over the last 24 hours per person who browsed today (the status page\'s definition).',
      size: { w: 6, h: 6 },
      unit: 'm',
      decimals: 0,
      thresholds: BUSINESS_STEPS,
      queries: [{ expr: minutesPerPerson(BUSINESS), legend: 'business networking', instant: true }],
    }),
    text('About these figures', { w: 24, h: 9 }, ABOUT),

    row('Over time'),
    timeSeries({
      title: 'Share of browsing time: leisure and business networking',
      description: 'Hourly share of browsing person-minutes (recording rule job_category:leeway_active_minutes_share:ratio_rate1h).',
      size: { w: 12, h: 8 },
      unit: 'percentunit',
      min: 0,
      max: 1,
      thresholds: SHARE_STEPS,
      queries: [
        { expr: `sum(job_category:leeway_active_minutes_share:ratio_rate1h{${LEISURE}})`, legend: 'leisure' },
        { expr: `sum(job_category:leeway_active_minutes_share:ratio_rate1h{${BUSINESS}})`, legend: 'business networking' },
      ],
    }),
    timeSeries({
      title: 'Minutes per active person per day',
      description: 'Person-minutes over the trailing day per person who browsed, all groups (recording rules job_category:leeway_active_minutes:increase1d and job:leeway_people_browsing:max1d).',
      size: { w: 12, h: 8 },
      unit: 'm',
      min: 0,
      queries: [
        {
          expr: `sum(job_category:leeway_active_minutes:increase1d{${LEISURE}}) / sum(job:leeway_people_browsing:max1d)`,
          legend: 'leisure',
        },
        {
          expr: `sum(job_category:leeway_active_minutes:increase1d{${BUSINESS}}) / sum(job:leeway_people_browsing:max1d)`,
          legend: 'business networking',
        },
      ],
    }),

    row('How much time people spend today'),
    barGauge({
      title: 'Daily leisure minutes: how many people in each band',
      description: 'People today per band of daily minutes on leisure categories. Shows the distribution, never an individual.',
      size: { w: 12, h: 8 },
      unit: 'none',
      decimals: 0,
      min: 0,
      queries: [{ expr: `sum by (band) (leeway_daily_minutes_people{${LEISURE}})`, legend: '{{band}} min', instant: true }],
    }),
    barGauge({
      title: 'Daily business networking minutes: how many people in each band',
      description: 'People today per band of daily minutes on business networking categories.',
      size: { w: 12, h: 8 },
      unit: 'none',
      decimals: 0,
      min: 0,
      queries: [{ expr: `sum by (band) (leeway_daily_minutes_people{${BUSINESS}})`, legend: '{{band}} min', instant: true }],
    }),

    row('Pages and choices'),
    barGauge({
      title: 'Pages shown and what people did next',
      description: 'Coach, suggest and block pages over the selected period, by outcome.',
      size: { w: 10, h: 8 },
      unit: 'none',
      decimals: 0,
      min: 0,
      queries: [{ expr: `sum by (page, outcome) (increase(leeway_pages_total{${C}}[$__range]))`, legend: '{{page}}: {{outcome}}', instant: true }],
    }),
    stat({
      title: 'Coach pages followed by Continue',
      description: 'Share of coach pages after which the person chose to continue.',
      size: { w: 4, h: 4 },
      unit: 'percentunit',
      decimals: 0,
      min: 0,
      max: 1,
      thresholds: NEUTRAL,
      queries: [{ expr: pageRatio('coach', 'continued'), legend: 'continued', instant: true }],
    }),
    stat({
      title: 'Internal alternative uptake',
      description: 'Share of suggest pages after which the person took the internal alternative.',
      size: { w: 4, h: 4 },
      unit: 'percentunit',
      decimals: 0,
      min: 0,
      max: 1,
      thresholds: [
        { value: null, color: 'orange' },
        { value: 0.2, color: 'green' },
      ],
      queries: [{ expr: pageRatio('suggest', 'alternative'), legend: 'alternative taken', instant: true }],
    }),
    pieChart({
      title: 'Purpose answers',
      description: 'Answers to "What is this visit for?" on coach pages, over the selected period.',
      size: { w: 6, h: 8 },
      unit: 'none',
      decimals: 0,
      queries: [{ expr: `sum by (purpose) (increase(leeway_purpose_answers_total{${C}}[$__range]))`, legend: '{{purpose}}', instant: true }],
    }),
    stat({
      title: 'Daily quotas used up',
      description: 'How many times a daily quota ran out over the selected period.',
      size: { w: 4, h: 4 },
      unit: 'none',
      decimals: 0,
      thresholds: NEUTRAL,
      queries: [{ expr: `sum(increase(leeway_quota_exhausted_total{${C}}[$__range]))`, legend: 'quotas used up', instant: true }],
    }),
    stat({
      title: 'Block pages',
      description: 'Pages blocked for dangerous categories over the selected period.',
      size: { w: 4, h: 4 },
      unit: 'none',
      decimals: 0,
      thresholds: NEUTRAL,
      queries: [{ expr: `sum(increase(leeway_pages_total{page="block", outcome="shown", ${C}}[$__range]))`, legend: 'blocked', instant: true }],
    }),
    timeSeries({
      title: 'Quota exhaustion over time',
      description: 'Daily quotas used up per hour, by category.',
      size: { w: 24, h: 7 },
      unit: 'none',
      min: 0,
      queries: [{ expr: `sum by (category) (increase(leeway_quota_exhausted_total{${C}}[1h]))`, legend: '{{category}}' }],
    }),

    row('By group (k-anonymous)'),
    barGauge({
      title: 'Leisure share of browsing time by group',
      description: 'Per policy group with at least k active people; smaller groups appear only as "other".',
      size: { w: 8, h: 8 },
      unit: 'percentunit',
      decimals: 1,
      min: 0,
      max: 1,
      thresholds: SHARE_STEPS,
      queries: [
        {
          expr:
            `sum by (group) (increase(leeway_active_minutes_total{${LEISURE}, ${G}}[$__range]))` +
            ` / sum by (group) (increase(leeway_browsing_minutes_total{${G}}[$__range]))`,
          legend: '{{group}}',
          instant: true,
        },
      ],
    }),
    barGauge({
      title: 'Leisure minutes per active person by group (24 h)',
      description: 'Per policy group with at least k active people, per person of the group who browsed today; smaller groups appear only as "other".',
      size: { w: 8, h: 8 },
      unit: 'm',
      decimals: 0,
      min: 0,
      thresholds: LEISURE_MINUTES_STEPS,
      queries: [{ expr: minutesPerPerson(LEISURE, 'group'), legend: '{{group}}', instant: true }],
    }),
    barGauge({
      title: 'Business networking minutes per active person by group (24 h)',
      description: 'Per policy group with at least k active people, per person of the group who browsed today; smaller groups appear only as "other".',
      size: { w: 8, h: 8 },
      unit: 'm',
      decimals: 0,
      min: 0,
      thresholds: BUSINESS_STEPS,
      queries: [{ expr: minutesPerPerson(BUSINESS, 'group'), legend: '{{group}}', instant: true }],
    }),
    timeSeries({
      title: 'Leisure share by group over time',
      description: 'Hourly leisure share per group (recording rule job_group_category:leeway_active_minutes_share:ratio_rate1h).',
      size: { w: 24, h: 8 },
      unit: 'percentunit',
      min: 0,
      max: 1,
      thresholds: SHARE_STEPS,
      queries: [
        {
          expr: `sum by (group) (job_group_category:leeway_active_minutes_share:ratio_rate1h{${LEISURE}, ${G}})`,
          legend: '{{group}}',
        },
      ],
    }),
  ]),
} satisfies Dashboard;
