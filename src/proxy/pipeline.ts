/**
 * The request pipeline, in the order every request passes through it (issue 3 item 2):
 *
 *   1. accept    client ACL (settings.proxy.clients)                        accept.ts
 *   2. identify  proxy auth / trusted header / network → group, pseudonym   identify.ts
 *   3. classify  host → category, site  }  one call: decide() classifies
 *   4. decide    pure policy decision   }  and returns category and site    ../policy/decide.ts
 *   5. enforce   forward | tunnel | intercept | websocket | page            forward.ts, tunnel.ts,
 *                                                                           websocket.ts, page.ts
 *   6. account   report to the accounting seam                              account.ts
 *
 * A stage that answers the request ends the pipeline. This file only chooses; the work is done
 * in the modules named above. Three entry points share the stages: plain HTTP requests,
 * CONNECT, and Upgrade; `inner()` runs the same stages for requests decrypted by an Interceptor.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log/logger.js';
import { LeewayError } from '../errors.js';
import { decide, readsUsage } from '../policy/decide.js';
import type { Decision, UsageView } from '../policy/types.js';
import { NO_USAGE } from '../policy/types.js';
import type { AcknowledgementStore } from '../pages/acknowledgements.js';
import type { ContinueTokens } from '../pages/continue-token.js';
import { proxyAuthenticateHeader } from '../identity/proxy-auth.js';
import type { Accounting, EnforcedAction, PageKind, TrafficKind, ConnectionKind } from './account.js';
import { noopAccounting } from './account.js';
import { acceptClient } from './accept.js';
import type { Identifier, Identity, IdentifyResult } from './identify.js';
import type { Destination, Egress } from './egress.js';
import { forward } from './forward.js';
import type { ForwardOutcome, OriginAgents } from './forward.js';
import { connectOrigin, openTunnel, relayLink } from './tunnel.js';
import type { OriginLink } from './tunnel.js';
import { peekClientHello } from '../tls/client-hello.js';
import type { PeekResult } from '../tls/client-hello.js';
import { proxyWebSocket } from './websocket.js';
import type { InnerHandlers, Interceptor } from './interceptor.js';
import type { Runtime } from './runtime.js';
import { originFormTarget, parseAbsoluteTarget, parseAuthority } from './target.js';
import type { RequestTarget } from './target.js';
import { writeRawResponse } from './raw-response.js';
import { sendErrorPage, sendPolicyPage, pageLanguage, CONTINUE_PATH, readContinueForm } from './page.js';
import type { LocalRoutes } from './local-routes.js';

export interface PipelineDeps {
  /** The runtime of the policy in force; swapped atomically on reload. */
  readonly runtime: () => Runtime;
  readonly identifier: Identifier;
  readonly egress: Egress;
  readonly agents: OriginAgents;
  readonly accounting: Accounting;
  readonly interceptor: Interceptor | undefined;
  readonly tokens: ContinueTokens;
  readonly acknowledgements: AcknowledgementStore;
  readonly localRoutes: LocalRoutes;
  readonly logger: Logger;
  readonly clock: () => number;
}

/** What a page needs to know about the request it replaces. */
interface Visit {
  readonly runtime: Runtime;
  readonly identity: Identity;
  readonly target: RequestTarget;
  readonly kind: TrafficKind;
  readonly start: number;
}

const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);
/**
 * Browsers send their ClientHello at once; a client that says nothing while its origin says
 * nothing either waits this long before its blind tunnel opens (an origin that speaks first ends
 * the wait at once).
 */
const CLIENT_HELLO_TIMEOUT_MS = 1_000;

/** The host a CONNECT is decided on (the CONNECT host, or the ClientHello's SNI) and what was decided. */
interface ConnectChoice {
  readonly host: string;
  readonly decision: Decision;
  readonly page: PageKind | undefined;
}

export class Pipeline {
  /** Sockets handed to tunnels, WebSockets and interceptors, closed at the end of a drain. */
  readonly detached = new Set<Duplex>();
  readonly #accounting: Accounting | undefined;

  constructor(private readonly deps: PipelineDeps) {
    // Skip building records nobody reads.
    this.#accounting = deps.accounting === noopAccounting ? undefined : deps.accounting;
  }

  // ---- entry points -------------------------------------------------------------------------

  /** `request` event of the proxy's http.Server. */
  readonly request = (req: IncomingMessage, res: ServerResponse): void => {
    const runtime = this.deps.runtime();
    const socket = req.socket;
    if (!acceptClient(runtime, socket)) return this.#refuseClient(socket, () => this.#sendError(req, res, new LeewayError('LEEWAY_ERR_CLIENT_FORBIDDEN', 'this proxy does not serve your network')));
    const url = req.url ?? '';
    if (url.charCodeAt(0) === 47 /* '/' */) {
      // Origin-form on the proxy port: the proxy's own pages (PAC file, privacy page).
      if (this.deps.localRoutes.handle(req, res, runtime)) return;
      return this.#sendError(req, res, new LeewayError('LEEWAY_ERR_BAD_REQUEST', 'this is a proxy: send absolute URLs (http://host/path)'));
    }
    const target = parseAbsoluteTarget(url);
    if (target === undefined) return this.#sendError(req, res, new LeewayError('LEEWAY_ERR_BAD_REQUEST', 'the request target is not a valid http or https URL'));
    this.#identify(runtime, socket, req.rawHeaders, (result) => {
      if (!result.ok) return this.#challenge(req, res, runtime);
      this.#http(runtime, req, res, target, result.identity, 'http');
    });
  };

  /** `connect` event: CONNECT host:port. */
  readonly connect = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => undefined);
    const runtime = this.deps.runtime();
    const netSocket = req.socket;
    if (!acceptClient(runtime, netSocket)) return this.#refuseClient(netSocket, () => this.#rawRefusal(socket, new LeewayError('LEEWAY_ERR_CLIENT_FORBIDDEN', 'client not allowed')));
    const authority = parseAuthority(req.url ?? '', 443);
    if (authority === undefined || !(req.url ?? '').includes(':')) {
      return this.#rawRefusal(socket, new LeewayError('LEEWAY_ERR_BAD_REQUEST', 'CONNECT needs host:port'));
    }
    if (!runtime.connectPorts.has(authority.port)) {
      return this.#rawRefusal(socket, new LeewayError('LEEWAY_ERR_PORT_FORBIDDEN', `CONNECT to port ${authority.port} is not allowed`));
    }
    this.#identify(runtime, netSocket, req.rawHeaders, (result) => {
      if (!result.ok) {
        return writeRawResponse(socket, 407, { 'Proxy-Authenticate': proxyAuthenticateHeader(runtime.realm), 'X-Leeway-Reason': 'auth-required' });
      }
      this.#connect(runtime, socket, head, authority.host, authority.port, result.identity);
    });
  };

  /** `upgrade` event: WebSocket over plain HTTP (absolute-form). */
  readonly upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => undefined);
    const runtime = this.deps.runtime();
    const netSocket = req.socket;
    if (!acceptClient(runtime, netSocket)) return this.#refuseClient(netSocket, () => this.#rawRefusal(socket, new LeewayError('LEEWAY_ERR_CLIENT_FORBIDDEN', 'client not allowed')));
    const target = parseAbsoluteTarget(req.url ?? '');
    if (target === undefined) return this.#rawRefusal(socket, new LeewayError('LEEWAY_ERR_BAD_REQUEST', 'the request target is not a valid URL'));
    this.#identify(runtime, netSocket, req.rawHeaders, (result) => {
      if (!result.ok) return writeRawResponse(socket, 407, { 'Proxy-Authenticate': proxyAuthenticateHeader(runtime.realm) });
      this.#upgrade(runtime, req, socket, head, target, result.identity, 'websocket');
    });
  };

  /** Handlers for the requests an Interceptor decrypts inside one CONNECT (same identity, https). */
  inner(identity: Identity, host: string, port: number): InnerHandlers {
    return {
      request: (req, res) => {
        this.#http(this.deps.runtime(), req, res, originFormTarget('https', host, port, req.url ?? '/'), identity, 'https');
      },
      upgrade: (req, socket, head) => {
        socket.on('error', () => undefined);
        this.#upgrade(this.deps.runtime(), req, socket, head, originFormTarget('https', host, port, req.url ?? '/'), identity, 'websocket');
      },
    };
  }

  // ---- stage 2: identify ----------------------------------------------------------------------

  #identify(runtime: Runtime, socket: Socket, rawHeaders: readonly string[], next: (result: IdentifyResult) => void): void {
    const result = this.deps.identifier.identify(runtime, socket, rawHeaders, this.deps.clock());
    if (!(result instanceof Promise)) return next(result);
    result.then(next, (error: unknown) => {
      this.deps.logger.error({ err: error }, 'identify failed');
      next({ ok: false, reason: 'auth-failed' });
    });
  }

  // ---- stages 3-5 for one HTTP request ------------------------------------------------------

  #http(runtime: Runtime, req: IncomingMessage, res: ServerResponse, target: RequestTarget, identity: Identity, kind: TrafficKind): void {
    const now = this.deps.clock();
    if (target.pathOnly.startsWith('/.leeway/')) {
      // Leeway's own paths answer on any host, so links on a page shown for a site (privacy, CA) work there.
      if (target.pathOnly === CONTINUE_PATH) return this.#continue(runtime, req, res, target, identity, now);
      if (this.deps.localRoutes.handle(req, res, runtime, target.pathOnly)) return;
    }
    const method = req.method ?? 'GET';
    const decision = decide({ host: target.host, port: target.port, method, path: target.pathOnly, group: identity.group }, runtime.policy, now, this.#usage(runtime, identity));
    const visit: Visit = { runtime, identity, target, kind, start: now };
    const page = this.#pageFor(decision, identity, target.host, method, now);
    if (page !== undefined) return this.#page(req, res, visit, decision, page);
    this.#resolve(runtime, target.host, target.port, (destination) => {
      if (destination instanceof LeewayError) {
        this.#record(visit, decision, 'error', destination.status, 0, 0, destination);
        return this.#sendError(req, res, destination);
      }
      forward(
        req,
        res,
        { scheme: target.scheme, host: target.host, port: target.port, path: target.path, destination },
        { agents: this.deps.agents, secureContext: runtime.upstreamSecureContext, upstreamMs: runtime.policy.settings.proxy.timeouts.upstreamMs, dropHeader: runtime.trustedHeader?.name },
        (outcome: ForwardOutcome) => {
          if (outcome.error !== undefined && !outcome.aborted && !res.headersSent) {
            this.deps.logger.debug({ code: outcome.error.code, nodeCode: outcome.error.context.nodeCode }, 'origin failed');
            this.#sendError(req, res, outcome.error);
          }
          this.#record(visit, decision, outcome.error === undefined ? 'allow' : 'error', outcome.error?.status ?? outcome.status, outcome.bytesIn, outcome.bytesOut, outcome.error);
        },
      );
    });
  }

  /** The page a decision calls for, or undefined when the request may pass. */
  #pageFor(decision: Decision, identity: Identity, host: string, method: string | undefined, now: number): PageKind | undefined {
    const action = decision.action;
    switch (action.kind) {
      case 'allow':
        return undefined;
      case 'readonly':
        return method === undefined || SAFE_METHODS.has(method) ? undefined : 'readonly';
      case 'coach':
      case 'suggest':
        return this.deps.acknowledgements.has(identity.pseudonym, acknowledgementKey(decision.ruleId, decision.site, host), now) ? undefined : action.kind;
      case 'block':
        return 'block';
    }
  }

  // ---- CONNECT ----------------------------------------------------------------------------------

  #connect(runtime: Runtime, socket: Duplex, head: Buffer, host: string, port: number, identity: Identity): void {
    const now = this.deps.clock();
    const decision = decide({ host, port, group: identity.group }, runtime.policy, now, this.#usage(runtime, identity));
    const page = this.#pageFor(decision, identity, host, undefined, now);
    const interceptor = this.deps.interceptor;
    if (interceptor !== undefined && interceptor.available && runtime.interceptionEnabled) {
      const intercepts = (page !== undefined || decision.needsInspection) && !runtime.policy.isDoNotInspect(host);
      // The ClientHello's SNI decides where it differs from the CONNECT host (issue 4 item 3):
      // before an interception (a do-not-inspect SNI must stay blind), and before every tunnel,
      // so that a client fronting another name (or connecting to an IP address) is decided on
      // the name it really asks for. The peeked tunnel relays as fast as the plain one.
      if (intercepts || page === undefined) return this.#connectPeeking(runtime, interceptor, socket, head, { host, decision, page }, port, identity, now);
    }
    const visit: Visit = { runtime, identity, target: { scheme: 'https', host, port, path: '', pathOnly: '' }, kind: 'tunnel', start: now };
    if (page !== undefined) {
      // Without interception there is no way to show a page inside TLS: refuse, saying why (issue 3 item 7).
      this.#record(visit, decision, page === 'readonly' ? 'readonly' : page, 403, 0, 0);
      return writeRawResponse(socket, 403, { 'X-Leeway-Reason': `${page}; rule=${headerSafe(decision.ruleId)}` }, `${page}: ${headerSafe(decision.ruleId)}\n`);
    }
    this.#resolve(runtime, host, port, (destination) => {
      if (destination instanceof LeewayError) {
        this.#record(visit, decision, 'error', destination.status, 0, 0, destination);
        return this.#rawRefusal(socket, destination);
      }
      this.#track(socket, 'tunnel');
      openTunnel(
        socket,
        head,
        host,
        destination,
        port,
        { idleMs: runtime.policy.settings.proxy.timeouts.idleMs, connectMs: runtime.policy.settings.proxy.timeouts.upstreamMs, onBytes: this.#bytesReporter(visit, decision) },
        (error) => {
          this.#record(visit, decision, 'error', error.status, 0, 0, error);
          this.#rawRefusal(socket, error);
        },
        (result) => this.#record(visit, decision, 'allow', 200, result.bytesIn, result.bytesOut),
      );
    });
  }

  /**
   * CONNECT when interception can apply (issue 4 item 3). The client is answered 200 and its
   * ClientHello read for the SNI; where that names another host, the policy decides again on it,
   * and the certificate, the decision and the origin of the inner requests all use that name. A
   * tunnel is still chosen by the CONNECT host first: its origin is connected before the 200, so
   * an unreachable origin still gets a 502, and the peeked bytes are replayed to it untouched.
   */
  #connectPeeking(runtime: Runtime, interceptor: Interceptor, socket: Duplex, head: Buffer, first: ConnectChoice, port: number, identity: Identity, start: number): void {
    const intercepts = (choice: ConnectChoice): boolean => (choice.page !== undefined || choice.decision.needsInspection) && !runtime.policy.isDoNotInspect(choice.host);
    const timeouts = runtime.policy.settings.proxy.timeouts;
    const visitOf = (choice: ConnectChoice, kind: TrafficKind): Visit => ({ runtime, identity, target: { scheme: 'https', host: choice.host, port, path: '', pathOnly: '' }, kind, start });
    const choose = (peek: PeekResult): ConnectChoice => {
      if (peek.serverName === undefined || peek.serverName === first.host.toLowerCase().replace(/\.$/, '')) return first;
      const host = peek.serverName;
      const decision = decide({ host, port, group: identity.group }, runtime.policy, this.deps.clock(), this.#usage(runtime, identity));
      return { host, decision, page: this.#pageFor(decision, identity, host, undefined, this.deps.clock()) };
    };
    const intercept = (choice: ConnectChoice, bytes: Buffer): void => {
      this.#track(socket, 'intercepted');
      interceptor.intercept(socket, bytes, { host: choice.host, port }, this.inner(identity, choice.host, port));
    };
    const tunnel = (choice: ConnectChoice, origin: OriginLink, bytes: Buffer): void => {
      const visit = visitOf(choice, 'tunnel');
      this.#track(socket, 'tunnel');
      relayLink(socket, origin, bytes, { idleMs: timeouts.idleMs, connectMs: timeouts.upstreamMs, onBytes: this.#bytesReporter(visit, choice.decision) }, (result) =>
        this.#record(visit, choice.decision, 'allow', 200, result.bytesIn, result.bytesOut),
      );
    };
    /** After the 200, a refusal can only close the connection. */
    const refuse = (choice: ConnectChoice, error?: LeewayError): void => {
      const action: EnforcedAction = error !== undefined ? 'error' : choice.page === 'readonly' ? 'readonly' : (choice.page ?? 'block');
      this.#record(visitOf(choice, 'tunnel'), choice.decision, action, error?.status ?? 403, 0, 0, error);
      socket.destroy();
    };
    const afterPeek = (peek: PeekResult | undefined, origin: OriginLink | undefined): void => {
      if (origin !== undefined) origin.onHeld = undefined;
      if (peek === undefined) return void origin?.socket.destroy();
      const choice = choose(peek);
      if (intercepts(choice)) {
        origin?.socket.destroy();
        return intercept(choice, peek.bytes);
      }
      // A page the host may not be inspected for cannot be shown inside TLS.
      if (choice.page !== undefined) {
        origin?.socket.destroy();
        return refuse(choice);
      }
      if (origin !== undefined) return tunnel(choice, origin, peek.bytes);
      // Chosen for interception by the CONNECT host, tunnelled for the SNI host: to the CONNECT target.
      this.#resolve(runtime, first.host, port, (destination) => {
        if (destination instanceof LeewayError) return refuse(choice, destination);
        const pending = connectOrigin(first.host, destination, port, timeouts.upstreamMs, (error) => {
          socket.off('close', abandon);
          if (error !== undefined) return refuse(choice, error);
          tunnel(choice, pending, peek.bytes);
        });
        const abandon = (): void => void pending.socket.destroy();
        socket.once('close', abandon);
      });
    };
    const peek = (origin: OriginLink | undefined): void => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      const stop = peekClientHello(socket, head, { timeoutMs: CLIENT_HELLO_TIMEOUT_MS }, (result) => afterPeek(result, origin));
      // TLS clients speak first: an origin that speaks before the client said anything runs
      // another protocol, so the tunnel opens at once instead of after the ClientHello timeout.
      if (origin !== undefined) {
        if (origin.held.length > 0) stop();
        // Not from inside the origin's read callback, which stops reading after it returns.
        else origin.onHeld = () => process.nextTick(stop);
      }
    };
    if (intercepts(first)) {
      // The certificate is minted while the ClientHello is on its way.
      interceptor.prepare?.(first.host);
      // And the origin connection is opened while the client's handshake runs (none for a page).
      if (first.page === undefined) this.#prewarm(runtime, first.host, port);
      return peek(undefined);
    }
    this.#resolve(runtime, first.host, port, (destination) => {
      const visit = visitOf(first, 'tunnel');
      if (destination instanceof LeewayError) {
        this.#record(visit, first.decision, 'error', destination.status, 0, 0, destination);
        return this.#rawRefusal(socket, destination);
      }
      const pending = connectOrigin(first.host, destination, port, timeouts.upstreamMs, (error) => {
        socket.off('close', abandon);
        if (error !== undefined) {
          this.#record(visit, first.decision, 'error', error.status, 0, 0, error);
          return this.#rawRefusal(socket, error);
        }
        peek(pending);
      });
      const abandon = (): void => void pending.socket.destroy();
      socket.once('close', abandon);
    });
  }

  /** Opens the origin connection an intercepted CONNECT's first request will use, through the same egress checks. */
  #prewarm(runtime: Runtime, host: string, port: number): void {
    this.#resolve(runtime, host, port, (destination) => {
      // A refusal is answered when the request comes; nothing is opened for it now.
      if (destination instanceof LeewayError) return;
      this.deps.agents.pool({ scheme: 'https', host, port, path: '', destination }, runtime.upstreamSecureContext, runtime.policy.settings.proxy.timeouts.upstreamMs).prewarm(host);
    });
  }

  // ---- Upgrade (WebSocket) ----------------------------------------------------------------------

  #upgrade(runtime: Runtime, req: IncomingMessage, socket: Duplex, head: Buffer, target: RequestTarget, identity: Identity, kind: TrafficKind): void {
    const now = this.deps.clock();
    const method = req.method ?? 'GET';
    const decision = decide({ host: target.host, port: target.port, method, path: target.pathOnly, group: identity.group }, runtime.policy, now, this.#usage(runtime, identity));
    const visit: Visit = { runtime, identity, target, kind, start: now };
    const page = this.#pageFor(decision, identity, target.host, method, now);
    if (page !== undefined) {
      this.#record(visit, decision, page, 403, 0, 0);
      return writeRawResponse(socket, 403, { 'X-Leeway-Reason': `${page}; rule=${headerSafe(decision.ruleId)}` });
    }
    this.#resolve(runtime, target.host, target.port, (destination) => {
      if (destination instanceof LeewayError) return this.#rawRefusal(socket, destination);
      this.#track(socket, 'websocket');
      proxyWebSocket(
        req,
        socket,
        head,
        { scheme: target.scheme, host: target.host, port: target.port, path: target.path, destination },
        {
          agent: target.scheme === 'https' ? this.deps.agents.https(runtime.upstreamSecureContext) : this.deps.agents.http,
          upstreamMs: runtime.policy.settings.proxy.timeouts.upstreamMs,
          idleMs: runtime.policy.settings.proxy.timeouts.idleMs,
          dropHeader: runtime.trustedHeader?.name,
          onBytes: this.#bytesReporter(visit, decision),
        },
        (error) => {
          this.#record(visit, decision, 'error', error.status, 0, 0, error);
          this.#rawRefusal(socket, error);
        },
        (result) => this.#record(visit, decision, 'allow', result.status, result.bytesIn, result.bytesOut),
      );
    });
  }

  // ---- pages and the Continue flow -----------------------------------------------------------

  #page(req: IncomingMessage, res: ServerResponse, visit: Visit, decision: Decision, page: PageKind): void {
    const { identity, target } = visit;
    let token: string | undefined;
    const action = decision.action;
    if (action.kind === 'coach' || action.kind === 'suggest') {
      token = this.deps.tokens.issue({
        pseudonym: identity.pseudonym,
        host: target.host,
        ...(decision.site === undefined ? {} : { site: decision.site }),
        ruleId: decision.ruleId,
        url: originalUrl(target),
        continueMinutes: action.continueMinutes,
        ...(action.kind === 'suggest' ? { alternativeUrl: action.alternative.url } : {}),
      });
    }
    sendPolicyPage(req, res, { page, decision, host: target.host, token, policy: visit.runtime.policy });
    this.#record(visit, decision, page, res.statusCode, 0, 0);
    this.#pageEvent(visit, decision, page, 'shown', undefined);
    // The body of a refused upload is not wanted; drain it so the connection can be reused.
    req.resume();
  }

  #continue(runtime: Runtime, req: IncomingMessage, res: ServerResponse, target: RequestTarget, identity: Identity, now: number): void {
    readContinueForm(req, target, (form) => {
      if (form === undefined) return this.#sendError(req, res, new LeewayError('LEEWAY_ERR_BAD_REQUEST', 'the Continue form could not be read'));
      let redeemed = this.deps.tokens.redeem(form.token, { pseudonym: identity.pseudonym, host: target.host });
      // Issued before local midnight, under the pseudonym of the day before: still this person's.
      if (!redeemed.ok && redeemed.reason === 'wrong-person' && identity.formerPseudonym !== undefined) {
        redeemed = this.deps.tokens.redeem(form.token, { pseudonym: identity.formerPseudonym, host: target.host });
      }
      if (!redeemed.ok) {
        this.deps.logger.debug({ reason: redeemed.reason }, 'continue token refused');
        return this.#sendError(req, res, new LeewayError('LEEWAY_ERR_TOKEN_INVALID', 'this Continue link is not valid (expired, already used, or not yours)', { reason: redeemed.reason }));
      }
      const claims = redeemed.claims;
      const toAlternative = form.choice === 'alternative' && claims.alternativeUrl !== undefined;
      // Only Continue acknowledges; taking the alternative leaves the page in place for next time.
      if (!toAlternative) this.deps.acknowledgements.record(identity.pseudonym, acknowledgementKey(claims.ruleId, claims.site, claims.host), now + claims.continueMinutes * 60_000);
      if (this.#accounting !== undefined) {
        const { category } = runtime.policy.classify(target.host);
        this.#accounting.pageEvent({
          at: now,
          pseudonym: identity.pseudonym,
          group: identity.group,
          category,
          site: claims.site,
          ruleId: claims.ruleId,
          page: claims.alternativeUrl === undefined ? 'coach' : 'suggest',
          outcome: toAlternative ? 'alternative' : 'continued',
          ...(form.purpose === undefined ? {} : { purpose: form.purpose }),
        });
      }
      // 303: the browser follows with a GET, whatever the form used (RFC 9110 §15.4.4).
      res.writeHead(303, { Location: toAlternative ? (claims.alternativeUrl as string) : claims.url, 'Cache-Control': 'no-store', 'Content-Length': '0' });
      res.end();
    });
  }

  // ---- helpers --------------------------------------------------------------------------------

  #resolve(runtime: Runtime, host: string, port: number, next: (destination: Destination | LeewayError) => void): void {
    const result = this.deps.egress.resolve(runtime, host, port);
    if (result instanceof Promise) result.then(next, (error: unknown) => next(new LeewayError('LEEWAY_ERR_INTERNAL', 'resolution failed', {}, { cause: error })));
    else next(result);
  }

  #usage(runtime: Runtime, identity: Identity): UsageView {
    // Only quota rules read usage: without one, asking accounting (a view built per request) buys nothing.
    return readsUsage(runtime.policy) ? this.deps.accounting.usage(identity.pseudonym) : NO_USAGE;
  }

  #track(socket: Duplex, kind: ConnectionKind): void {
    this.#accounting?.connection?.(socket, kind);
    this.detached.add(socket);
    socket.once('close', () => this.detached.delete(socket));
  }

  #refuseClient(socket: Socket, answer: () => void): void {
    // The one log line that may carry a client address: the moment it is refused (issue 3 item 6).
    this.deps.logger.warn({ client: socket.remoteAddress }, 'client not in settings.proxy.clients refused');
    answer();
  }

  #challenge(req: IncomingMessage, res: ServerResponse, runtime: Runtime): void {
    res.setHeader('Proxy-Authenticate', proxyAuthenticateHeader(runtime.realm));
    req.resume();
    this.#sendError(req, res, new LeewayError('LEEWAY_ERR_AUTH_REQUIRED', 'this proxy needs your user name and password'));
  }

  #sendError(req: IncomingMessage, res: ServerResponse, error: LeewayError): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendErrorPage(res, error, pageLanguage(req));
  }

  #rawRefusal(socket: Duplex, error: LeewayError): void {
    writeRawResponse(socket, error.status, { 'X-Leeway-Reason': headerSafe(`${error.code}: ${error.message}`) }, `${error.message}\n`);
  }

  #record(visit: Visit, decision: Decision, action: EnforcedAction, status: number, bytesIn: number, bytesOut: number, error?: LeewayError): void {
    const accounting = this.#accounting;
    if (accounting === undefined) return;
    const now = this.deps.clock();
    accounting.requestDone({
      at: now,
      kind: visit.kind,
      pseudonym: visit.identity.pseudonym,
      group: visit.identity.group,
      category: decision.category,
      site: decision.site,
      ruleId: decision.ruleId,
      action,
      status,
      bytesIn,
      bytesOut,
      durationMs: now - visit.start,
      quota: decision.quota,
      errorCode: error?.code,
    });
  }

  #pageEvent(visit: Visit, decision: Decision, page: PageKind, outcome: 'shown', purpose: undefined): void {
    this.#accounting?.pageEvent({
      at: this.deps.clock(),
      pseudonym: visit.identity.pseudonym,
      group: visit.identity.group,
      category: decision.category,
      site: decision.site,
      ruleId: decision.ruleId,
      page,
      outcome,
      ...(purpose === undefined ? {} : { purpose }),
    });
  }

  #bytesReporter(visit: Visit, decision: Decision): ((direction: 'client-to-origin' | 'origin-to-client', bytes: number) => void) | undefined {
    const accounting = this.#accounting;
    if (accounting === undefined) return undefined;
    const kind = visit.kind === 'websocket' ? 'websocket' : 'tunnel';
    return (direction, bytes) =>
      accounting.tunnelBytes({ at: this.deps.clock(), kind, pseudonym: visit.identity.pseudonym, group: visit.identity.group, category: decision.category, site: decision.site, direction, bytes });
  }
}

/** What a Continue acknowledges: one rule for one site (or host when the site is unnamed). */
export function acknowledgementKey(ruleId: string, site: string | undefined, host: string): string {
  return `${ruleId}:${site ?? host.toLowerCase().replace(/\.$/, '')}`;
}

function originalUrl(target: RequestTarget): string {
  const defaultPort = target.scheme === 'https' ? 443 : 80;
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  return `${target.scheme}://${host}${target.port === defaultPort ? '' : `:${target.port}`}${target.path}`;
}

function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}
