/**
 * The seam for usage accounting (issue 5 fills it). The proxy reports what happened; the
 * accounting module turns it into active minutes, quotas and metrics. Records carry the
 * pseudonym and never a user name, client address, path or query.
 */
import type { QuotaState, UsageView } from '../policy/types.js';
import { NO_USAGE } from '../policy/types.js';
import type { Duplex } from 'node:stream';
import type { Pseudonym } from '../identity/pseudonym.js';
import type { LeewayErrorCode } from '../errors.js';

export type TrafficKind = 'http' | 'https' | 'tunnel' | 'websocket';

/** What a client connection carries now: plain HTTP, a blind tunnel, an intercepted tunnel, a WebSocket. */
export type ConnectionKind = 'http' | 'tunnel' | 'intercepted' | 'websocket';

/** The action the proxy actually took (after acknowledgements and interception choices). */
export type EnforcedAction = 'allow' | 'coach' | 'suggest' | 'readonly' | 'block' | 'refused' | 'error';

export interface RequestRecord {
  readonly at: number;
  readonly kind: TrafficKind;
  readonly pseudonym: Pseudonym;
  readonly group: string | undefined;
  readonly category: string | undefined;
  readonly site: string | undefined;
  readonly ruleId: string;
  readonly action: EnforcedAction;
  /** HTTP status sent to the client (200 for an established tunnel). */
  readonly status: number;
  /** Bytes received from the client (request body) and sent to it (response body). */
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationMs: number;
  /** The decision's quota state when a `quota` rule decided: accounting counts exhaustions from it. */
  readonly quota?: QuotaState | undefined;
  /** With action `error`: why, so `leeway_upstream_errors_total{code}` can count origin failures (issue 5). */
  readonly errorCode?: LeewayErrorCode | undefined;
}

export interface TunnelActivity {
  readonly at: number;
  readonly kind: 'tunnel' | 'websocket';
  readonly pseudonym: Pseudonym;
  readonly group: string | undefined;
  readonly category: string | undefined;
  readonly site: string | undefined;
  readonly direction: 'client-to-origin' | 'origin-to-client';
  readonly bytes: number;
}

export type PageKind = 'coach' | 'suggest' | 'block' | 'readonly';
export type PageOutcome = 'shown' | 'continued' | 'alternative';

export interface PageEvent {
  readonly at: number;
  readonly pseudonym: Pseudonym;
  readonly group: string | undefined;
  readonly category: string | undefined;
  readonly site: string | undefined;
  readonly ruleId: string;
  readonly page: PageKind;
  readonly outcome: PageOutcome;
  /** The answer to "what is this visit for?", when the page asked and the person answered ("Rather not say" is unsaid). */
  readonly purpose?: 'business' | 'break' | 'unsaid';
}

export interface Accounting {
  /** Today's usage for this person; must be a cheap, synchronous lookup (it runs per request while the policy has a quota rule). */
  usage(pseudonym: Pseudonym): UsageView;
  requestDone(record: RequestRecord): void;
  /** Reported as bytes flow (per chunk or batched), so long tunnels count as active while open. */
  tunnelBytes(record: TunnelActivity): void;
  pageEvent(event: PageEvent): void;
  /**
   * Optional, for `leeway_open_connections{kind}`: a client connection opened (`http`) or now
   * carries something else (a tunnel, a WebSocket). The receiver watches the socket's close.
   */
  connection?(socket: Duplex, kind: ConnectionKind): void;
}

export const noopAccounting: Accounting = Object.freeze({
  usage: () => NO_USAGE,
  requestDone: () => undefined,
  tunnelBytes: () => undefined,
  pageEvent: () => undefined,
});
