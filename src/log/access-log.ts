/**
 * Per-request access log lines (issue 5, item 4), in the mode the policy sets:
 * - `aggregate-only`: no per-request lines at all;
 * - `anonymous` (default): time, category, site, action, status, bytes, duration;
 * - `pseudonymous`: the same plus the daily pseudonym, announced by a warning line.
 * A line is built only from an explicit allow-list of fields, copied one by one, so no other
 * property of whatever the caller holds (user, client address, host, path, query) can slip in.
 * Site and category are the policy's names, `other` otherwise: the host is never written.
 */
import type { DestinationStream } from 'pino';
import type { AccessLogMode } from '../policy/types.js';
import { createLogger } from './logger.js';
import type { Logger } from './logger.js';

/** Everything an access line may ever carry. */
export interface AccessEntry {
  readonly category: string;
  readonly site: string;
  readonly action: string;
  readonly status: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationMs: number;
  readonly kind: string;
  readonly pseudonym?: string;
}

export type AccessField = keyof AccessEntry;

export const ANONYMOUS_FIELDS: readonly AccessField[] = Object.freeze([
  'category', 'site', 'action', 'status', 'bytesIn', 'bytesOut', 'durationMs', 'kind',
] as const);
export const PSEUDONYMOUS_FIELDS: readonly AccessField[] = Object.freeze([...ANONYMOUS_FIELDS, 'pseudonym'] as const);

/** The fields a mode writes; none for aggregate-only. */
export function fieldsFor(mode: AccessLogMode): readonly AccessField[] {
  switch (mode) {
    case 'aggregate-only': return [];
    case 'anonymous': return ANONYMOUS_FIELDS;
    case 'pseudonymous': return PSEUDONYMOUS_FIELDS;
  }
}

/** Copy only the allowed fields; the time is pino's own `time`. */
export function pickAccessFields(entry: AccessEntry, fields: readonly AccessField[]): Record<string, string | number> {
  const line: Record<string, string | number> = {};
  for (const field of fields) {
    const value = entry[field];
    if (value !== undefined) line[field] = value;
  }
  return line;
}

export interface AccessLog {
  readonly mode: AccessLogMode;
  write(entry: AccessEntry): void;
}

export interface AccessLogOptions {
  /** The live mode (policy reloads may change it); read per line. */
  readonly mode: () => AccessLogMode;
  /** Warnings go here; access lines too unless `destination` is given. */
  readonly logger: Logger;
  /**
   * Where access lines go through a logger of their own: no redaction pass (the allow-list
   * already guarantees what a line holds) and, with a buffered destination, no write per request.
   */
  readonly destination?: DestinationStream;
}

export function createAccessLog(options: AccessLogOptions): AccessLog {
  const base = options.destination === undefined ? options.logger : createLogger({ level: 'info', destination: options.destination, allowListedFieldsOnly: true });
  const access = base.child({ log: 'access' });
  let warnedFor: AccessLogMode | undefined;
  const warnIfPseudonymous = (mode: AccessLogMode): void => {
    if (mode === 'pseudonymous' && warnedFor !== mode) {
      options.logger.warn(
        { log: 'access', accessLog: mode },
        'access log is pseudonymous: each line carries the daily pseudonym of the person (settings.accessLog); use anonymous unless you must',
      );
    }
    warnedFor = mode;
  };
  warnIfPseudonymous(options.mode());
  return {
    get mode(): AccessLogMode {
      return options.mode();
    },
    write(entry: AccessEntry): void {
      const mode = options.mode();
      if (mode !== warnedFor) warnIfPseudonymous(mode);
      const fields = fieldsFor(mode);
      if (fields.length === 0) return;
      access.info(pickAccessFields(entry, fields), 'access');
    },
  };
}
