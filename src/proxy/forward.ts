/**
 * The forward action: one request to the origin over a keep-alive pool, bodies streamed both
 * ways with backpressure (pipe), headers rewritten in one pass. Built on node:http directly
 * rather than http-proxy: http-proxy re-parses the URL, copies options and sets headers one by
 * one on every request, which is what keeps it below Squid on small responses (FIELD-NOTES).
 */
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SecureContext } from 'node:tls';
import { LeewayError } from '../errors.js';
import { forwardHeaders } from './headers.js';
import type { Destination } from './egress.js';
import { upstreamError } from './upstream-errors.js';

export interface OriginAgents {
  readonly http: http.Agent;
  /** One https Agent per upstream trust (system roots, or roots plus the extra bundle). */
  https(secureContext: SecureContext | undefined): https.Agent;
  destroy(): void;
}

// Below Node's default server keepAliveTimeout (5 s) so we drop an idle socket before the origin does.
const ORIGIN_IDLE_MS = 4_000;

export function createOriginAgents(): OriginAgents {
  const options = { keepAlive: true, timeout: ORIGIN_IDLE_MS, maxFreeSockets: 256, scheduling: 'lifo' as const };
  const httpAgent = new http.Agent(options);
  const defaultHttps = new https.Agent(options);
  const byContext = new WeakMap<SecureContext, https.Agent>();
  const all: https.Agent[] = [defaultHttps];
  return {
    http: httpAgent,
    https(secureContext) {
      if (secureContext === undefined) return defaultHttps;
      let agent = byContext.get(secureContext);
      if (agent === undefined) {
        agent = new https.Agent({ ...options, secureContext });
        byContext.set(secureContext, agent);
        all.push(agent);
      }
      return agent;
    },
    destroy() {
      httpAgent.destroy();
      for (const agent of all) agent.destroy();
    },
  };
}

export interface ForwardTarget {
  readonly scheme: 'http' | 'https';
  /** Host name as the client named it (Host header, TLS servername). */
  readonly host: string;
  readonly port: number;
  /** Origin-form path with query. */
  readonly path: string;
  readonly destination: Destination;
}

export interface ForwardOutcome {
  readonly status: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Set when the origin could not be reached or failed; the caller answers with a page if nothing was sent yet. */
  readonly error: LeewayError | undefined;
  /** True when headers were already sent when the error happened (the client connection was closed). */
  readonly aborted: boolean;
}

export interface ForwardOptions {
  readonly agents: OriginAgents;
  readonly secureContext: SecureContext | undefined;
  /** Connect + response headers must come within this. */
  readonly upstreamMs: number;
  /** A header to drop (the trusted identity header). */
  readonly dropHeader: string | undefined;
}

export function forward(req: IncomingMessage, res: ServerResponse, target: ForwardTarget, options: ForwardOptions, done: (outcome: ForwardOutcome) => void): void {
  const headers = forwardHeaders(req.rawHeaders, { keepTransferEncoding: true, drop: options.dropHeader, host: hostHeader(target) });
  let bytesIn = 0;
  let bytesOut = 0;
  let status = 0;
  let finished = false;
  const finish = (error: LeewayError | undefined, aborted: boolean): void => {
    if (finished) return;
    finished = true;
    done({ status, bytesIn, bytesOut, error, aborted });
  };

  const secure = target.scheme === 'https';
  const requestOptions: https.RequestOptions = {
    host: target.destination.address,
    family: target.destination.family,
    port: target.port,
    method: req.method,
    path: target.path,
    headers: headers as unknown as http.OutgoingHttpHeaders, // node:http accepts a flat raw array (documented), the types do not say so
    agent: secure ? options.agents.https(options.secureContext) : options.agents.http,
    setHost: false,
  };
  if (secure && isIP(target.host) === 0) requestOptions.servername = target.host;
  const upstream = secure ? https.request(requestOptions) : http.request(requestOptions);

  const timer = setTimeout(() => {
    upstream.destroy(new LeewayError('LEEWAY_ERR_UPSTREAM_TIMEOUT', 'the origin did not answer in time', { host: target.host }));
  }, options.upstreamMs);

  upstream.on('response', (origin) => {
    clearTimeout(timer);
    status = origin.statusCode ?? 502;
    const responseHeaders = forwardHeaders(origin.rawHeaders, { keepTransferEncoding: req.httpVersionMinor >= 1 && req.httpVersionMajor >= 1 });
    res.writeHead(status, origin.statusMessage, responseHeaders);
    origin.on('data', (chunk: Buffer) => {
      bytesOut += chunk.length;
    });
    origin.on('error', () => undefined);
    origin.on('close', () => {
      if (origin.complete) return finish(undefined, false);
      // Reset mid-response: the client must see a truncated message, never a silently short one.
      res.destroy();
      finish(new LeewayError('LEEWAY_ERR_UPSTREAM_RESET', 'the origin closed the connection mid-response', { host: target.host }), true);
    });
    origin.pipe(res);
  });

  upstream.on('error', (error) => {
    clearTimeout(timer);
    const mapped = upstreamError(error, target.host);
    if (res.headersSent) {
      res.destroy();
      finish(mapped, true);
    } else {
      finish(mapped, false);
    }
  });

  req.on('data', (chunk: Buffer) => {
    bytesIn += chunk.length;
  });
  res.on('close', () => {
    // The client went away (abort mid-upload or mid-download): release the origin socket too.
    if (!res.writableFinished) {
      clearTimeout(timer);
      upstream.destroy();
      finish(undefined, true);
    }
  });
  req.pipe(upstream);
}

export function hostHeader(target: { scheme: 'http' | 'https'; host: string; port: number }): string {
  const host = isIP(target.host) === 6 ? `[${target.host}]` : target.host;
  const defaultPort = target.scheme === 'https' ? 443 : 80;
  return target.port === defaultPort ? host : `${host}:${target.port}`;
}
