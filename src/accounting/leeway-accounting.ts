/**
 * Usage accounting wired to one Leeway instance: give `accounting` to createLeeway, then call
 * `attach(leeway)` once it exists. Two steps because the ledger's day, the label sets and the
 * access-log mode all come from the policy, which createLeeway is the one to load.
 *
 * attach() registers `/metrics` and the `/` status page on the admin listener.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DestinationStream } from 'pino';
import type { Duplex } from 'node:stream';
import type { Accounting, ConnectionKind, PageEvent, RequestRecord, TunnelActivity } from '../proxy/account.js';
import type { Pseudonym } from '../identity/pseudonym.js';
import { NO_USAGE } from '../policy/types.js';
import type { CompiledPolicy, UsageView } from '../policy/types.js';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { createAccessLog } from '../log/access-log.js';
import type { AccessLog } from '../log/access-log.js';
import { LeewayMetrics } from '../metrics/metrics.js';
import type { ReloadResult } from '../metrics/metrics.js';
import { statusPageHandler } from '../admin/status-page.js';
import type { AdminHandler } from '../admin/server.js';
import { createAccounting } from './accounting.js';
import type { ProxyAccounting } from './accounting.js';
import { UsageLedger } from './usage-ledger.js';

/** What attach() needs of a Leeway (structural, so embedders can pass their own). */
export interface AccountedProxy {
  readonly policy: CompiledPolicy;
  readonly admin: { register(path: string, handler: AdminHandler): void };
}

export interface UsageAccountingOptions {
  /** Where the access log and accounting faults go. Default: silent. */
  readonly logger?: Logger;
  /** Epoch ms. Default Date.now. */
  readonly clock?: () => number;
  /** prom-client's process metrics. Default true. */
  readonly defaultMetrics?: boolean;
  /**
   * Where access lines go (e.g. `pino.destination({ dest: 1, sync: false, minLength: 4096 })`):
   * a logger of their own without a redaction pass. Default: the `logger`, redaction included.
   */
  readonly accessLogDestination?: DestinationStream;
  /** Package version for the status page. */
  readonly version?: string;
  /** See AccountingOptions.schedule (benchmarks time the batch with it). */
  readonly schedule?: (settle: () => void) => void;
}

export interface UsageAccounting {
  /** Pass to createLeeway({ accounting }). Until attach() it records nothing and reads 0 minutes. */
  readonly accounting: Accounting;
  attach(proxy: AccountedProxy): void;
  /** Write access lines still held in memory (they wait at most ACCESS_LOG_MAX_DELAY_MS). */
  flush(): void;
  /** Count a reload's outcome in leeway_policy_reloads_total. */
  policyReloaded(result: ReloadResult): void;
  /** Defined once attached. */
  readonly metrics: LeewayMetrics | undefined;
  readonly ledger: UsageLedger | undefined;
}

export function createUsageAccounting(options: UsageAccountingOptions = {}): UsageAccounting {
  const logger = options.logger ?? silentLogger();
  const clock = options.clock ?? Date.now;
  const startedAt = clock();
  let inner: ProxyAccounting | undefined;
  let metrics: LeewayMetrics | undefined;
  let accessLog: AccessLog | undefined;
  let proxied: AccountedProxy | undefined;
  let followed: CompiledPolicy | undefined;
  // Asked at every report (a reference comparison): a reload that changes the zone moves the next
  // rollover. Not only in usage(): the proxy asks for usage only when a quota rule can read it.
  /** The accounting in force (none before the proxy is attached), following the live policy's zone. */
  const following = (): ProxyAccounting | undefined => {
    const current = proxied?.policy;
    if (inner !== undefined && current !== undefined && current !== followed) {
      followed = current;
      inner.ledger.setTimeZone(current.settings.timeZone);
    }
    return inner;
  };

  const accounting: Accounting = {
    usage: (pseudonym: Pseudonym): UsageView => following()?.usage(pseudonym) ?? NO_USAGE,
    requestDone: (record: RequestRecord): void => following()?.requestDone(record),
    tunnelBytes: (record: TunnelActivity): void => following()?.tunnelBytes(record),
    pageEvent: (event: PageEvent): void => following()?.pageEvent(event),
    connection: (socket: Duplex, kind: ConnectionKind): void => inner?.connection?.(socket, kind),
  };

  return {
    accounting,
    // Readers of the figures first account the records still waiting for their batch.
    get metrics() {
      inner?.settle();
      return metrics;
    },
    get ledger() {
      inner?.settle();
      return inner?.ledger;
    },
    flush(): void {
      inner?.settle();
      accessLog?.flush();
    },
    policyReloaded(result: ReloadResult): void {
      metrics?.policyReload(result);
    },
    attach(proxy: AccountedProxy): void {
      if (inner !== undefined) throw new TypeError('usage accounting is already attached');
      proxied = proxy;
      followed = proxy.policy;
      const policy = (): CompiledPolicy => proxy.policy;
      const ledger = new UsageLedger({ timeZone: proxy.policy.settings.timeZone, categoryKind: (c) => proxy.policy.categoryKinds[c] ?? 'other' });
      metrics = new LeewayMetrics({ policy, ledger, clock, defaultMetrics: options.defaultMetrics ?? true });
      accessLog = createAccessLog({
        mode: () => proxy.policy.settings.accessLog,
        logger,
        ...(options.accessLogDestination === undefined ? {} : { destination: options.accessLogDestination }),
      });
      const accounting = createAccounting({ policy, ledger, metrics, accessLog, logger, clock, ...(options.schedule === undefined ? {} : { schedule: options.schedule }) });
      inner = accounting;

      const registry = metrics;
      proxy.admin.register('/metrics', async (_req: IncomingMessage, res: ServerResponse) => {
        accounting.settle();
        const body = await registry.metrics();
        res.writeHead(200, { 'content-type': registry.contentType, 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'no-store' });
        res.end(res.req.method === 'HEAD' ? undefined : body);
      });

      let loaded = { hash: proxy.policy.hash, at: startedAt };
      proxy.admin.register(
        '/',
        statusPageHandler(() => {
          accounting.settle();
          const now = clock();
          const current = proxy.policy;
          if (current.hash !== loaded.hash) loaded = { hash: current.hash, at: now };
          return {
            now,
            timeZone: ledger.timeZone,
            minGroupSize: current.settings.anonymity.minGroupSize,
            uptimeSeconds: Math.round(process.uptime()),
            ...(options.version === undefined ? {} : { version: options.version }),
            policy: { hash: current.hash, files: current.files, loadedAt: loaded.at },
            today: ledger.todaySummary(now),
          };
        }),
      );
    },
  };
}
