/**
 * One table of error codes (after fastify's lib/errors.js and undici's core/errors.js).
 * Every error Leeway raises or answers with is a LeewayError carrying one of these codes;
 * callers switch on `code`, never on `message`.
 */
export const ERROR_CODES = {
  // Policy loading and compiling (reported as file:line:col message).
  LEEWAY_ERR_POLICY_INVALID: { status: 500, title: 'Invalid policy' },
  LEEWAY_ERR_POLICY_IO: { status: 500, title: 'Policy file unreadable' },
  // Configuration given on the command line or to createLeeway().
  LEEWAY_ERR_CONFIG: { status: 500, title: 'Invalid configuration' },
  LEEWAY_ERR_CIDR: { status: 500, title: 'Invalid network (CIDR)' },
  // Requests from clients.
  LEEWAY_ERR_CLIENT_FORBIDDEN: { status: 403, title: 'Client not allowed' },
  LEEWAY_ERR_AUTH_REQUIRED: { status: 407, title: 'Proxy authentication required' },
  LEEWAY_ERR_BAD_REQUEST: { status: 400, title: 'Bad request' },
  LEEWAY_ERR_LOOP: { status: 508, title: 'Request loops back to the proxy' },
  LEEWAY_ERR_PORT_FORBIDDEN: { status: 403, title: 'Port not allowed' },
  LEEWAY_ERR_EGRESS_FORBIDDEN: { status: 403, title: 'Destination not allowed' },
  LEEWAY_ERR_POLICY_BLOCK: { status: 403, title: 'Blocked by policy' },
  LEEWAY_ERR_PAGE_REQUIRED: { status: 403, title: 'A page must be shown' },
  LEEWAY_ERR_TOKEN_INVALID: { status: 403, title: 'Invalid or expired link' },
  // Origins.
  LEEWAY_ERR_UPSTREAM_REFUSED: { status: 502, title: 'Origin refused the connection' },
  LEEWAY_ERR_UPSTREAM_HOST_NOT_FOUND: { status: 502, title: 'Host not found' },
  LEEWAY_ERR_UPSTREAM_TIMEOUT: { status: 504, title: 'Origin did not answer in time' },
  LEEWAY_ERR_UPSTREAM_RESET: { status: 502, title: 'Origin closed the connection' },
  LEEWAY_ERR_UPSTREAM_TLS: { status: 502, title: 'Origin certificate is not valid' },
  LEEWAY_ERR_UPSTREAM: { status: 502, title: 'Origin error' },
  // TLS interception.
  LEEWAY_ERR_CA: { status: 500, title: 'Interception CA problem' },
  LEEWAY_ERR_INTERNAL: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type LeewayErrorCode = keyof typeof ERROR_CODES;

export class LeewayError extends Error {
  readonly code: LeewayErrorCode;
  readonly status: number;
  /** Extra, non-personal context (file, line, host...) for logs and pages. */
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: LeewayErrorCode, message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LeewayError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.context = Object.freeze({ ...context });
  }
}

export function isLeewayError(value: unknown): value is LeewayError {
  return value instanceof LeewayError;
}
