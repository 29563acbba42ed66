/**
 * Leeway's Prometheus metrics (issue 5, item 3) on a registry of our own, never prom-client's
 * global one, so two proxies in one process (tests, embedders) never share series.
 *
 * Every label value comes from a bounded set: category, site and group names from the loaded
 * policy (anything else is `other`), and fixed enums for the rest. A group is named only while
 * at least `settings.anonymity.minGroupSize` distinct people of it were active today; smaller
 * groups fold into `other` so nobody can be singled out (PRODUCT.md, privacy rule 4).
 * Counters grow as events come; the gauges that describe "today" are computed from the
 * UsageLedger at scrape time.
 */
import type { Duplex } from 'node:stream';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Histogram } from 'prom-client';
import { ERROR_CODES } from '../errors.js';
import type { LeewayErrorCode } from '../errors.js';
import type { CompiledPolicy } from '../policy/types.js';
import type { UsageLedger } from '../accounting/usage-ledger.js';

export const OTHER = 'other';
const DEFAULT_MIN_GROUP_SIZE = 5;

export const ACTION_LABELS = ['allow', 'coach', 'suggest', 'readonly', 'block', 'refused', 'error'] as const;
const ACTION_SET: ReadonlySet<string> = new Set(ACTION_LABELS);
export const PAGE_LABELS = ['coach', 'suggest', 'block', 'readonly'] as const;
export const OUTCOME_LABELS = ['shown', 'continued', 'alternative'] as const;
export const PURPOSE_LABELS = ['business', 'break', 'unsaid'] as const;
export const DIRECTION_LABELS = ['client-to-origin', 'origin-to-client'] as const;
export const CONNECTION_KIND_LABELS = ['http', 'tunnel', 'intercepted', 'websocket'] as const;
export const REQUEST_KIND_LABELS = ['http', 'https'] as const;
/** The TLS interceptor's reasons (src/tls/interceptor.ts HandshakeFailureReason). */
export const HANDSHAKE_FAILURE_LABELS = ['unknown-ca', 'bad-certificate', 'certificate-unknown', 'closed', 'closed-after-handshake', 'timeout', 'protocol', 'no-certificate'] as const;
export const RELOAD_RESULTS = ['success', 'failure'] as const;

export type ActionLabel = (typeof ACTION_LABELS)[number];
export type PageLabel = (typeof PAGE_LABELS)[number];
export type OutcomeLabel = (typeof OUTCOME_LABELS)[number];
export type PurposeLabel = (typeof PURPOSE_LABELS)[number];
export type DirectionLabel = (typeof DIRECTION_LABELS)[number];
export type ConnectionKindLabel = (typeof CONNECTION_KIND_LABELS)[number];
export type RequestKindLabel = (typeof REQUEST_KIND_LABELS)[number];
export type HandshakeFailureLabel = (typeof HANDSHAKE_FAILURE_LABELS)[number];
export type ReloadResult = (typeof RELOAD_RESULTS)[number];

/** Request durations from sub-millisecond cache hits to a slow origin's full minute. */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface MetricsOptions {
  /** The live policy (it changes on reload); undefined before the first load folds everything into `other`. */
  readonly policy: () => CompiledPolicy | undefined;
  readonly ledger: UsageLedger;
  /** prom-client's process metrics (CPU, memory, event loop lag). Default true. */
  readonly defaultMetrics?: boolean;
  /** Epoch ms, read at scrape time so "today" gauges roll over at midnight without traffic. Default Date.now. */
  readonly clock?: () => number;
}

/**
 * Per-request counters gathered between scrapes: one string key and a Map lookup per event
 * instead of prom-client's label validation and hashing (the account stage runs per request,
 * issue 5 allows it under 5% of forwarding). Labels are folded when a key is first seen under a
 * policy, so a reload re-folds from then on and counts made before keep their labels.
 */
class FoldedTally<L extends string> {
  // Keyed by the raw values in nested maps: policy names are long-lived strings whose hashes V8
  // caches, while a joined key would be a new string to hash on every request.
  #byRaw = new Map<string | undefined, Map<string | undefined, Cell<L>>>();
  readonly #all: Cell<L>[] = [];
  #policy: CompiledPolicy | undefined;

  /** `fold` names the labels of raw values, under the policy in force when they are first seen. */
  constructor(private readonly fold: (a: string | undefined, b: string | undefined) => Partial<Record<L, string>>) {}

  cell(policy: CompiledPolicy | undefined, a: string | undefined, b: string | undefined): Cell<L> {
    if (policy !== this.#policy) {
      this.#policy = policy;
      this.#byRaw = new Map();
    }
    let inner = this.#byRaw.get(a);
    if (inner === undefined) {
      inner = new Map();
      this.#byRaw.set(a, inner);
    }
    let cell = inner.get(b);
    if (cell === undefined) {
      cell = { labels: this.fold(a, b), value: 0 };
      inner.set(b, cell);
      this.#all.push(cell);
    }
    return cell;
  }

  /** Add the totals to a counter just reset; inc() sums cells that fold to the same labels. */
  addTo(counter: Counter<L>): void {
    for (const cell of this.#all) counter.inc(cell.labels, cell.value);
  }
}

interface Cell<L extends string> extends Count {
  readonly labels: Partial<Record<L, string>>;
}

/** A counter's value for one label combination, added to in place by whoever holds it. */
export interface Count {
  value: number;
}

/** A byte count the byte counters take: positive and finite (nothing else is added). */
export function countableBytes(bytes: number): boolean {
  return bytes > 0 && Number.isFinite(bytes);
}

/**
 * What one finished request moves, resolved once per (policy, category, site, action) by the
 * account stage so that a request costs a few additions (issue 5: accounting under 5% of
 * forwarding). `category` and `site` are the folded label values, for the access log.
 */
export interface RequestSeries {
  readonly category: string;
  readonly site: string;
  readonly requests: Count;
  readonly bytesIn: Count;
  readonly bytesOut: Count;
}

/**
 * `leeway_http_request_duration_seconds` counted in plain arrays: prom-client's Histogram
 * validates, hashes and allocates on every observation (about 1 µs), and this runs per request.
 * It is given to the registry with what the registry's exposition reads (name, help, type,
 * get(), reset()); the scrape test parses the result back and promtool checks it.
 */
class DurationHistogram {
  readonly name = 'leeway_http_request_duration_seconds';
  readonly help = 'Time from a request reaching the proxy to the end of its response, for forwarded and intercepted HTTP.';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  // One slot per kind (a two-value enum): no Map lookup per observation. A series exists only
  // once observed, and is exposed in the order first observed, as prom-client's would be.
  #http: DurationSeries | undefined;
  #https: DurationSeries | undefined;
  #observed: DurationSeries[] = [];

  observe(kind: RequestKindLabel, seconds: number): void {
    let series = kind === 'https' ? this.#https : this.#http;
    if (series === undefined) {
      series = { kind, buckets: new Float64Array(BUCKET_BOUNDS.length), sum: 0, count: 0 };
      if (kind === 'https') this.#https = series;
      else this.#http = series;
      this.#observed.push(series);
    }
    for (let i = 0; i < BUCKET_BOUNDS.length; i += 1) {
      if (seconds <= (BUCKET_BOUNDS[i] as number)) {
        series.buckets[i] = (series.buckets[i] as number) + 1;
        break;
      }
    }
    series.sum += seconds;
    series.count += 1;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: { labels: Record<string, string | number>; value: number; metricName: string }[] } {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const series of this.#observed) {
      const kind = series.kind;
      let cumulative = 0;
      DURATION_BUCKETS.forEach((le, i) => {
        cumulative += series.buckets[i] as number;
        values.push({ labels: { le, kind }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', kind }, value: series.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { kind }, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { kind }, value: series.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.#http = undefined;
    this.#https = undefined;
    this.#observed = [];
  }
}

interface DurationSeries {
  readonly kind: RequestKindLabel;
  /** Observations per bucket (not cumulative); +Inf is count minus their sum. */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

const BUCKET_BOUNDS = Float64Array.from(DURATION_BUCKETS);

interface PolicyNames {
  readonly categories: ReadonlySet<string>;
  readonly sites: ReadonlySet<string>;
  readonly groups: ReadonlySet<string>;
}

export class LeewayMetrics {
  readonly registry = new Registry();
  readonly #policy: () => CompiledPolicy | undefined;
  readonly #ledger: UsageLedger;
  readonly #clock: () => number;
  readonly #names = new WeakMap<CompiledPolicy, PolicyNames>();
  #certificateCacheSize: () => number = () => 0;
  // One tally per action (a bounded enum), each keyed by category and site.
  readonly #requestTallies = new Map<string, FoldedTally<'category' | 'site' | 'action'>>();
  readonly #bytesTally = new FoldedTally<'category' | 'direction'>((category, direction) => ({
    category: this.categoryLabel(category),
    direction: oneOf(DIRECTION_LABELS, direction ?? ''),
  }));
  readonly #connectionKinds = new WeakMap<Duplex, string>();
  #named: { readonly policy: CompiledPolicy | undefined; readonly version: number; readonly groups: ReadonlySet<string> } | undefined;

  readonly #requests: Counter<'category' | 'site' | 'action'>;
  readonly #activeMinutes: Counter<'category' | 'site' | 'group'>;
  readonly #browsingMinutes: Counter<'group'>;
  readonly #pages: Counter<'page' | 'category' | 'outcome'>;
  readonly #purposes: Counter<'category' | 'purpose'>;
  readonly #quotaExhausted: Counter<'category'>;
  readonly #bytes: Counter<'category' | 'direction'>;
  readonly #duration = new DurationHistogram();
  readonly #openConnections: Gauge<'kind'>;
  readonly #upstreamErrors: Counter<'code'>;
  readonly #certificatesMinted: Counter;
  readonly #handshakeFailures: Counter<'reason'>;
  readonly #reloads: Counter<'result'>;

  constructor(options: MetricsOptions) {
    this.#policy = options.policy;
    this.#ledger = options.ledger;
    this.#clock = options.clock ?? Date.now;
    const registers = [this.registry];

    this.#requests = new Counter({
      name: 'leeway_requests_total',
      help: 'Requests handled, by category, site named in the policy (else other) and action taken.',
      labelNames: ['category', 'site', 'action'],
      registers,
      collect: (): void => {
        this.#requests.reset();
        for (const tally of this.#requestTallies.values()) tally.addTo(this.#requests);
      },
    });
    this.#activeMinutes = new Counter({
      name: 'leeway_active_minutes_total',
      help: 'Person-minutes of activity on a site: a person counts once per clock minute in which they sent a request (or tunnel bytes) to it.',
      labelNames: ['category', 'site', 'group'],
      registers,
    });
    this.#browsingMinutes = new Counter({
      name: 'leeway_browsing_minutes_total',
      help: 'Person-minutes with any browsing at all, each minute counted once however many sites it touched.',
      labelNames: ['group'],
      registers,
    });
    const peopleActive: Gauge<'category' | 'group'> = new Gauge({
      name: 'leeway_people_active',
      help: 'Distinct people active today (local day in the policy time zone) per category and group.',
      labelNames: ['category', 'group'],
      registers,
      collect: (): void => {
        this.#ledger.advance(this.#clock());
        peopleActive.reset();
        for (const row of this.#ledger.peopleByCategoryAndGroup()) {
          peopleActive.inc({ category: this.categoryLabel(row.category), group: this.groupLabel(row.group) }, row.people);
        }
      },
    });
    // The denominator of "minutes per active person" that the status page uses (everyone who
    // browsed today), so dashboards and status page agree; per category, leeway_people_active.
    const peopleBrowsing: Gauge<'group'> = new Gauge({
      name: 'leeway_people_browsing',
      help: 'Distinct people with any browsing today (local day in the policy time zone) per group.',
      labelNames: ['group'],
      registers,
      collect: (): void => {
        this.#ledger.advance(this.#clock());
        peopleBrowsing.reset();
        for (const row of this.#ledger.peopleByGroup()) peopleBrowsing.inc({ group: this.groupLabel(row.group) }, row.people);
      },
    });
    const dailyMinutesPeople: Gauge<'category' | 'band'> = new Gauge({
      name: 'leeway_daily_minutes_people',
      help: 'People active today per category, by band of daily minutes in that category (0-15, 15-30, 30-60, 60-120, 120+).',
      labelNames: ['category', 'band'],
      registers,
      collect: (): void => {
        this.#ledger.advance(this.#clock());
        dailyMinutesPeople.reset();
        for (const row of this.#ledger.peopleByBand()) {
          dailyMinutesPeople.inc({ category: this.categoryLabel(row.category), band: row.band }, row.people);
        }
      },
    });
    this.#pages = new Counter({
      name: 'leeway_pages_total',
      help: 'Coach, suggest, block and readonly pages: shown, continued past, or alternative taken.',
      labelNames: ['page', 'category', 'outcome'],
      registers,
    });
    this.#purposes = new Counter({
      name: 'leeway_purpose_answers_total',
      help: 'Answers to "What is this visit for?" on coach pages.',
      labelNames: ['category', 'purpose'],
      registers,
    });
    this.#quotaExhausted = new Counter({
      name: 'leeway_quota_exhausted_total',
      help: 'Daily quotas used up: once per person, quota scope and day.',
      labelNames: ['category'],
      registers,
    });
    this.#bytes = new Counter({
      name: 'leeway_bytes_total',
      help: 'Body and tunnel bytes relayed, by category and direction.',
      labelNames: ['category', 'direction'],
      registers,
      collect: (): void => {
        this.#bytes.reset();
        this.#bytesTally.addTo(this.#bytes);
      },
    });
    // A duck-typed metric: the registry only reads name, get() and reset() (see DurationHistogram).
    this.registry.registerMetric(this.#duration as unknown as Histogram);
    this.#openConnections = new Gauge({
      name: 'leeway_open_connections',
      help: 'Client connections open now, by what they carry: plain HTTP, a blind tunnel, an intercepted tunnel, a WebSocket (each connection in one kind).',
      labelNames: ['kind'],
      registers,
    });
    this.#upstreamErrors = new Counter({
      name: 'leeway_upstream_errors_total',
      help: 'Origin failures by Leeway error code (LEEWAY_ERR_*).',
      labelNames: ['code'],
      registers,
    });
    this.#certificatesMinted = new Counter({
      name: 'leeway_tls_certificates_minted_total',
      help: 'Leaf certificates minted for interception.',
      registers,
    });
    const certificateCacheEntries: Gauge = new Gauge({
      name: 'leeway_tls_certificate_cache_entries',
      help: 'Leaf certificates held in the interception cache.',
      registers,
      collect: (): void => {
        certificateCacheEntries.set(this.#certificateCacheSize());
      },
    });
    this.#handshakeFailures = new Counter({
      name: 'leeway_tls_client_handshake_failures_total',
      help: 'TLS handshakes with clients that failed during interception, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.#reloads = new Counter({
      name: 'leeway_policy_reloads_total',
      help: 'Policy reloads, by result (a failed reload keeps the previous policy).',
      labelNames: ['result'],
      registers,
    });
    const policyInfo: Gauge<'hash'> = new Gauge({
      name: 'leeway_policy_info',
      help: 'The loaded policy, by content hash (always 1).',
      labelNames: ['hash'],
      registers,
      collect: (): void => {
        policyInfo.reset();
        const policy = this.#policy();
        if (policy !== undefined) policyInfo.set({ hash: policy.hash }, 1);
      },
    });

    // Start every enum-labelled counter at zero so rate() and dashboards see the series at once.
    for (const result of RELOAD_RESULTS) this.#reloads.inc({ result }, 0);
    for (const reason of [...HANDSHAKE_FAILURE_LABELS, OTHER]) this.#handshakeFailures.inc({ reason }, 0);
    for (const kind of CONNECTION_KIND_LABELS) this.#openConnections.set({ kind }, 0);
    this.#certificatesMinted.inc(0);

    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text for `/metrics`. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  // --- label folding -------------------------------------------------------------------------

  categoryLabel(name: string | undefined): string {
    return name !== undefined && this.#policyNames()?.categories.has(name) === true ? name : OTHER;
  }

  siteLabel(name: string | undefined): string {
    return name !== undefined && this.#policyNames()?.sites.has(name) === true ? name : OTHER;
  }

  /**
   * A group's name only while it had at least minGroupSize (k) distinct active people today, and
   * while `other` covers at least k people too (see #namedGroups); otherwise `other`.
   */
  groupLabel(name: string | undefined): string {
    if (name === undefined) return OTHER;
    return this.#namedGroups().has(name) ? name : OTHER;
  }

  /**
   * The groups reported by name now. Groups under k fold into `other` with people in no group;
   * if that leaves `other` with people but fewer than k (say one small group and nobody
   * ungrouped), `other` would single that group out, so the smallest named groups fold into it
   * too until it reaches k. When everyone together is under k, everything is `other`: the whole,
   * reported per group nowhere. Recomputed only when a policy or the people per group change
   * (a person's first request of the day), not per request.
   */
  #namedGroups(): ReadonlySet<string> {
    const policy = this.#policy();
    const version = this.#ledger.groupsVersion;
    const cached = this.#named;
    if (cached !== undefined && cached.policy === policy && cached.version === version) return cached.groups;
    const groups = new Set<string>();
    const names = this.#policyNames();
    if (policy !== undefined && names !== undefined) {
      const k = policy.settings.anonymity.minGroupSize ?? DEFAULT_MIN_GROUP_SIZE;
      const candidates: { group: string; people: number }[] = [];
      let otherPeople = 0;
      for (const row of this.#ledger.peopleByGroup()) {
        if (row.group !== OTHER && names.groups.has(row.group) && row.people >= k) candidates.push(row);
        else otherPeople += row.people;
      }
      // Smallest first (then by name, so the choice is stable): the least detail is given up.
      candidates.sort((a, b) => a.people - b.people || (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
      let folded = 0;
      while (otherPeople > 0 && otherPeople < k && folded < candidates.length) {
        otherPeople += (candidates[folded] as { people: number }).people;
        folded += 1;
      }
      for (const candidate of candidates.slice(folded)) groups.add(candidate.group);
    }
    this.#named = { policy, version, groups };
    return groups;
  }

  // --- usage events (the accounting module calls these) -------------------------------------

  /**
   * The request and byte counts of one (category, site, action) under the live policy, for a
   * caller that keeps it and adds to it per request. Resolve again after a reload (the labels
   * fold by policy); counts already added keep the labels they were folded to.
   */
  requestSeries(category: string | undefined, site: string | undefined, action: string): RequestSeries {
    const policy = this.#policy();
    return {
      category: this.categoryLabel(category),
      site: this.siteLabel(site),
      requests: this.#requestCell(policy, category, site, action),
      bytesIn: this.#bytesTally.cell(policy, category, 'client-to-origin'),
      bytesOut: this.#bytesTally.cell(policy, category, 'origin-to-client'),
    };
  }

  #requestCell(policy: CompiledPolicy | undefined, category: string | undefined, site: string | undefined, action: string): Count {
    // Keyed by the label, not the raw action: free text folds into one `other` tally.
    const label = ACTION_SET.has(action) ? action : OTHER;
    let tally = this.#requestTallies.get(label);
    if (tally === undefined) {
      tally = new FoldedTally((c, s) => ({ category: this.categoryLabel(c), site: this.siteLabel(s), action: label }));
      this.#requestTallies.set(label, tally);
    }
    return tally.cell(policy, category, site);
  }

  activeMinute(category: string | undefined, site: string | undefined, group: string | undefined): void {
    this.#activeMinutes.inc({ category: this.categoryLabel(category), site: this.siteLabel(site), group: this.groupLabel(group) });
  }

  browsingMinute(group: string | undefined): void {
    this.#browsingMinutes.inc({ group: this.groupLabel(group) });
  }

  page(page: string, category: string | undefined, outcome: string): void {
    this.#pages.inc({ page: oneOf(PAGE_LABELS, page), category: this.categoryLabel(category), outcome: oneOf(OUTCOME_LABELS, outcome) });
  }

  purpose(category: string | undefined, purpose: string): void {
    this.#purposes.inc({ category: this.categoryLabel(category), purpose: oneOf(PURPOSE_LABELS, purpose) });
  }

  quotaExhausted(category: string | undefined): void {
    this.#quotaExhausted.inc({ category: this.categoryLabel(category) });
  }

  bytes(category: string | undefined, direction: DirectionLabel, bytes: number): void {
    if (!countableBytes(bytes)) return;
    this.#bytesTally.cell(this.#policy(), category, direction).value += bytes;
  }

  // --- operations hooks ----------------------------------------------------------------------

  requestDuration(kind: RequestKindLabel, seconds: number): void {
    if (!(seconds >= 0)) return;
    this.#duration.observe(kind === 'https' ? 'https' : 'http', seconds);
  }

  /**
   * A client connection opened, or now carries another kind (a keep-alive HTTP connection that
   * becomes a tunnel moves from http to tunnel), so the kinds add up to the open connections.
   */
  trackConnection(socket: Duplex, kind: ConnectionKindLabel): void {
    const label = oneOf(CONNECTION_KIND_LABELS, kind);
    const previous = this.#connectionKinds.get(socket);
    if (previous === label) return;
    if (previous === undefined) {
      if (socket.destroyed) return;
      socket.once('close', () => {
        const last = this.#connectionKinds.get(socket);
        if (last !== undefined) this.#openConnections.dec({ kind: last });
        this.#connectionKinds.delete(socket);
      });
    } else {
      this.#openConnections.dec({ kind: previous });
    }
    this.#connectionKinds.set(socket, label);
    this.#openConnections.inc({ kind: label });
  }

  upstreamError(code: LeewayErrorCode): void {
    this.#upstreamErrors.inc({ code: Object.hasOwn(ERROR_CODES, code) ? code : 'LEEWAY_ERR_UPSTREAM' });
  }

  certificateMinted(): void {
    this.#certificatesMinted.inc();
  }

  /** Where the TLS engineer's certificate store reports its size; read at scrape time. */
  setCertificateCacheSize(size: () => number): void {
    this.#certificateCacheSize = size;
  }

  handshakeFailure(reason: HandshakeFailureLabel | string): void {
    this.#handshakeFailures.inc({ reason: oneOf(HANDSHAKE_FAILURE_LABELS, reason) });
  }

  policyReload(result: ReloadResult): void {
    this.#reloads.inc({ result: oneOf(RELOAD_RESULTS, result) });
  }

  #policyNames(): PolicyNames | undefined {
    const policy = this.#policy();
    if (policy === undefined) return undefined;
    let names = this.#names.get(policy);
    if (names === undefined) {
      names = { categories: new Set(policy.categoryNames), sites: new Set(policy.siteNames), groups: new Set(policy.groupNames) };
      this.#names.set(policy, names);
    }
    return names;
  }
}

/** The value itself when it is one of the enum's members, else `other`: a label can never carry free text. */
function oneOf<T extends string>(allowed: readonly T[], value: string): T | typeof OTHER {
  return (allowed as readonly string[]).includes(value) ? (value as T) : OTHER;
}
