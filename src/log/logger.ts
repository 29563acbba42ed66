/**
 * The one pino factory. Redaction is fixed here at start: credentials and addresses can never
 * be logged by accident, whatever object a caller passes. Access-log lines (what was done for
 * a request) go through src/log/access-log.ts, which picks allowed fields only.
 */
import pino from 'pino';
import type { DestinationStream, Logger, LoggerOptions } from 'pino';

export type { Logger } from 'pino';

export interface LoggerConfig {
  readonly level?: string;
  /** Where lines go; default stdout. Tests pass a stream to read lines back. */
  readonly destination?: DestinationStream;
}

const REDACT_PATHS = [
  'password',
  '*.password',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'headers["proxy-authorization"]',
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'key',
  '*.key',
  'privateKey',
  '*.privateKey',
];

let lastMillis = -1;
let lastTime = '';
/**
 * pino's isoTime, formatted once per millisecond: a busy proxy writes many lines per
 * millisecond, and Date#toISOString was the largest single cost of a line. The access log
 * (src/log/access-log.ts) uses it for lines it formats itself.
 */
export function cachedIsoTime(): string {
  const now = Date.now();
  if (now !== lastMillis) {
    lastMillis = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

export function createLogger(config: LoggerConfig = {}): Logger {
  const options: LoggerOptions = {
    level: config.level ?? process.env.LEEWAY_LOG_LEVEL ?? 'info',
    base: { service: 'leeway' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: cachedIsoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return config.destination === undefined ? pino(options) : pino(options, config.destination);
}

/** A logger that drops everything, for library users who pass none and for unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
