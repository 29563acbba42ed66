/**
 * The proxy's account stage (src/proxy/account.ts) made real: each report feeds the UsageLedger
 * (active minutes, quotas), the metrics and the access log. The proxy never waits on it and a
 * fault here must never fail a request, so every entry point is guarded.
 */
import type { Duplex } from 'node:stream';
import type { Accounting, ConnectionKind, PageEvent, RequestRecord, TunnelActivity } from '../proxy/account.js';
import type { Pseudonym } from '../identity/pseudonym.js';
import type { CompiledPolicy, UsageView } from '../policy/types.js';
import type { Logger } from '../log/logger.js';
import { accessLabels } from '../log/access-log.js';
import type { AccessLabels, AccessLog, RequestWriter } from '../log/access-log.js';
import { countableBytes } from '../metrics/metrics.js';
import type { LeewayMetrics, RequestSeries } from '../metrics/metrics.js';
import { BROWSING_MINUTE, SITE_MINUTE } from './usage-ledger.js';
import type { ScopePair, UsageLedger } from './usage-ledger.js';

export interface AccountingOptions {
  /** The live policy; read per event so reloads apply at once. */
  readonly policy: () => CompiledPolicy | undefined;
  readonly ledger: UsageLedger;
  readonly metrics: LeewayMetrics;
  readonly accessLog?: AccessLog;
  /** Where faults inside accounting are reported (they never reach the request). */
  readonly logger?: Logger;
  /** Epoch ms; only `usage()` needs it, to roll the day over before answering. Default Date.now. */
  readonly clock?: () => number;
  /**
   * Runs the batch of request records reported since the last one. Default: a timer of
   * SETTLE_DELAY_MS. (Tests pass one that runs at once; the bench one that times it.)
   */
  readonly schedule?: (settle: () => void) => void;
}

export interface ProxyAccounting extends Accounting {
  readonly ledger: UsageLedger;
  /**
   * Account the request records still waiting for their batch. Every reader of the figures
   * (usage, metrics, the status page, flush) calls it first.
   */
  settle(): void;
}

/**
 * Actions whose requests count as active time: the person reached the site. A page shown
 * instead (coach, suggest, block), a refused client or an origin error is not time on the site,
 * and counting blocked retries would inflate the very leisure figures Leeway exists to report.
 */
const ACTIVE_ACTIONS: ReadonlySet<string> = new Set(['allow', 'readonly']);

/** What one (category, site, action) moves per request: its counters and its access-line labels. */
interface Combination {
  readonly series: RequestSeries;
  readonly access: AccessLabels;
  /** The action counts as active time (ACTIVE_ACTIONS). */
  readonly active: boolean;
  /** The category and site as the ledger's scopes: counting then looks up neither name. */
  readonly scopes: ScopePair;
}

/**
 * Combinations resolved once per policy: a request then costs three Map lookups and a few
 * additions instead of a label fold and lookup per counter (issue 5: accounting under 5% of
 * forwarding). Keyed by the raw names, which come from the policy and are few.
 */
class Combinations {
  #policy: CompiledPolicy | undefined;
  #byCategory = new Map<string | undefined, Map<string | undefined, Map<string, Combination>>>();
  // The last combination asked for: requests come in runs to one site (a page and its resources),
  // and the names come from the policy, so a hit costs three reference comparisons.
  #last: Combination | undefined;
  #lastCategory: string | undefined;
  #lastSite: string | undefined;
  #lastAction: string | undefined;

  constructor(
    private readonly metrics: LeewayMetrics,
    private readonly ledger: UsageLedger,
  ) {}

  get(policy: CompiledPolicy | undefined, category: string | undefined, site: string | undefined, action: string): Combination {
    if (policy !== this.#policy) {
      // A reload may fold names differently: resolve again under the new policy.
      this.#policy = policy;
      this.#byCategory = new Map();
      this.#last = undefined;
    }
    const last = this.#last;
    if (last !== undefined && category === this.#lastCategory && site === this.#lastSite && action === this.#lastAction) return last;
    const combination = this.#resolve(category, site, action);
    this.#last = combination;
    this.#lastCategory = category;
    this.#lastSite = site;
    this.#lastAction = action;
    return combination;
  }

  #resolve(category: string | undefined, site: string | undefined, action: string): Combination {
    let bySite = this.#byCategory.get(category);
    if (bySite === undefined) {
      bySite = new Map();
      this.#byCategory.set(category, bySite);
    }
    let byAction = bySite.get(site);
    if (byAction === undefined) {
      byAction = new Map();
      bySite.set(site, byAction);
    }
    let combination = byAction.get(action);
    if (combination === undefined) {
      const series = this.metrics.requestSeries(category, site, action);
      combination = {
        series,
        access: accessLabels(series.category, series.site, action),
        active: ACTIVE_ACTIONS.has(action),
        scopes: this.ledger.scopes(category, site),
      };
      byAction.set(action, combination);
    }
    return combination;
  }
}

/**
 * How long request records wait to be accounted together. Batches of some milliseconds' records
 * keep the ledger's, the counters' and the access log's code and data in cache across many
 * records. Timed in place on a loaded proxy (share of the busy event loop spent in accounting,
 * anonymous log): 3.0% with a batch per turn of the event loop (setImmediate), 2.1% with 10 or
 * 20 ms, 1.7% with 50 and 100 ms (issue 5: accounting under 5% of forwarding). Nobody sees the
 * wait: every reader of the figures settles first, and access lines wait up to
 * ACCESS_LOG_MAX_DELAY_MS anyway. A loaded proxy scavenges its young generation about every
 * 50-100 ms, so few records live long enough to be promoted.
 */
export const SETTLE_DELAY_MS = 50;
/** Records waiting beyond this are accounted at once: a bound on memory at any request rate. */
const MAX_PENDING = 4_096;

/** Accountings with records waiting for their batch: accounted at exit. */
const unsettled = new Set<() => void>();
let exitHookInstalled = false;

export function createAccounting(options: AccountingOptions): ProxyAccounting {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const atExit of [...unsettled]) atExit();
    });
  }
  const { ledger, metrics, accessLog, logger } = options;
  const clock = options.clock ?? Date.now;
  const combinations = new Combinations(metrics, ledger);
  let faults = 0;
  const fault = (what: string, error: unknown): void => {
    // Log the first few only: a systematic fault would otherwise log on every request.
    faults += 1;
    if (faults <= 5) logger?.error({ err: error, stage: 'account', what }, 'accounting fault (the request was not affected)');
  };

  const countActivity = (pseudonym: string, at: number, scopes: ScopePair, category: string | undefined, site: string | undefined, group: string | undefined): void => {
    const added = ledger.countIn(pseudonym, at, scopes, group);
    if ((added & SITE_MINUTE) !== 0) metrics.activeMinute(category, site, group);
    if ((added & BROWSING_MINUTE) !== 0) metrics.browsingMinute(group);
  };

  // try/catch inline rather than a guard(() => ...) closure: this runs once per request. The
  // policy and the access-log writer are read once per batch.
  const account = (record: RequestRecord, policy: CompiledPolicy | undefined, writeLine: RequestWriter | undefined): void => {
    try {
      const combination = combinations.get(policy, record.category, record.site, record.action);
      const series = combination.series;
      series.requests.value += 1;
      // The proxy reports when the exchange ends; the person sent the request when it began
      // (an hour-long tunnel is not an active minute at its close; its bytes count as they flow).
      if (combination.active) countActivity(record.pseudonym, record.at - Math.max(0, record.durationMs), combination.scopes, record.category, record.site, record.group);
      else ledger.advance(record.at);
      // Tunnel and WebSocket bytes arrive through tunnelBytes() as they flow; counting the
      // record's totals as well would count them twice.
      if (record.kind === 'http' || record.kind === 'https') {
        if (countableBytes(record.bytesIn)) series.bytesIn.value += record.bytesIn;
        if (countableBytes(record.bytesOut)) series.bytesOut.value += record.bytesOut;
        metrics.requestDuration(record.kind, record.durationMs / 1000);
      }
      // Only origin failures: a refused client or a forbidden destination is not an upstream error.
      if (record.errorCode?.startsWith('LEEWAY_ERR_UPSTREAM') === true) metrics.upstreamError(record.errorCode);
      const quota = record.quota;
      if (quota?.exhausted === true && ledger.quotaExhausted(record.pseudonym, quota.scope, record.at)) {
        metrics.quotaExhausted(quota.scope.kind === 'category' ? quota.scope.name : record.category);
      }
      // No writer when the log writes no per-request lines.
      writeLine?.(combination.access, record.status, record.bytesIn, record.bytesOut, Math.round(record.durationMs), record.kind, record.pseudonym);
    } catch (error) {
      fault('requestDone', error);
    }
  };

  // Records wait SETTLE_DELAY_MS and are accounted together: the ledger, counters and access log
  // are then touched once per batch with their code and data still in cache, where one by one
  // between the proxy's own work each request paid the cache misses again.
  const pending: RequestRecord[] = [];
  const settle = (): void => {
    if (pending.length === 0) return;
    let policy: CompiledPolicy | undefined;
    let writeLine: RequestWriter | undefined;
    try {
      policy = options.policy();
      writeLine = accessLog?.requestWriter();
    } catch (error) {
      fault('settle', error);
    }
    // account() catches its own faults, so one bad record cannot lose the others.
    for (let i = 0; i < pending.length; i += 1) account(pending[i] as RequestRecord, policy, writeLine);
    pending.length = 0;
  };
  // One batch waits at a time. A reader settling early leaves it in place: with a quota rule
  // usage() settles on every request, which must not cost a timer each.
  let scheduled = false;
  const scheduledRun = (): void => {
    scheduled = false;
    unsettled.delete(atExit);
    settle();
  };
  // A process exiting before the batch runs still accounts (and logs) what was reported.
  const atExit = (): void => {
    settle();
    accessLog?.flush();
  };
  // Unreferenced: a waiting batch never keeps the process alive (the exit hook accounts it).
  const schedule = options.schedule ?? ((run: () => void): void => void setTimeout(run, SETTLE_DELAY_MS).unref());

  return {
    ledger,
    settle,

    usage(pseudonym: Pseudonym): UsageView {
      if (pending.length > 0) settle();
      ledger.advance(clock());
      return ledger.usageView(pseudonym);
    },

    requestDone(record: RequestRecord): void {
      pending.push(record);
      if (!scheduled) {
        scheduled = true;
        unsettled.add(atExit);
        schedule(scheduledRun);
      }
      // The scheduled run, when it comes, accounts what has come since.
      if (pending.length >= MAX_PENDING) settle();
    },

    tunnelBytes(record: TunnelActivity): void {
      // In order with the requests reported before it (a day's rollover, a person's minute).
      if (pending.length > 0) settle();
      try {
        metrics.bytes(record.category, record.direction, record.bytes);
        // Only what the person sends is activity: an origin pushing to a background tab is not.
        if (record.direction === 'client-to-origin' && record.bytes > 0) {
          countActivity(record.pseudonym, record.at, ledger.scopes(record.category, record.site), record.category, record.site, record.group);
        }
      } catch (error) {
        fault('tunnelBytes', error);
      }
    },

    connection(socket: Duplex, kind: ConnectionKind): void {
      try {
        metrics.trackConnection(socket, kind);
      } catch (error) {
        fault('connection', error);
      }
    },

    pageEvent(event: PageEvent): void {
      if (pending.length > 0) settle();
      try {
        metrics.page(event.page, event.category, event.outcome);
        ledger.pageEvent(event.page, event.outcome, event.at);
        if (event.purpose !== undefined) {
          metrics.purpose(event.category, event.purpose);
          ledger.purposeAnswer(event.purpose, event.at);
        }
      } catch (error) {
        fault('pageEvent', error);
      }
    },
  };
}
