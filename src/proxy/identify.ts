/**
 * Stage 2, identify (issue 3 item 6): who is asking, as a pseudonym and a group. Sources, in
 * order: Basic proxy auth checked against htpasswd; a trusted header, only from configured
 * upstream addresses; else the client address. The user name is turned into a pseudonym and a
 * group at once and dropped; the password is never kept. The result is remembered per client
 * connection (browsers authenticate a connection once, and CONNECT tunnels carry no header).
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { parseBasicProxyAuthorization } from '../identity/proxy-auth.js';
import type { Pseudonym, Pseudonymizer } from '../identity/pseudonym.js';
import { rawHeader } from './headers.js';
import type { Runtime } from './runtime.js';

export interface Identity {
  readonly pseudonym: Pseudonym;
  /**
   * Yesterday's pseudonym of the same person, during the first minutes after local midnight
   * only: to honour a Continue token issued just before. Never recorded anywhere.
   */
  readonly formerPseudonym?: Pseudonym | undefined;
  readonly group: string | undefined;
  readonly authenticated: boolean;
}

export type IdentifyResult = { readonly ok: true; readonly identity: Identity } | { readonly ok: false; readonly reason: 'auth-required' | 'auth-failed' };

interface Remembered {
  readonly runtime: Runtime;
  readonly identity: Identity;
  /** Keyed digest of the Proxy-Authorization header that proved it (never the header itself). */
  readonly credentialDigest: string | undefined;
  readonly until: number;
}

// Bounded so a connection that lives past local midnight picks up the new day's pseudonym soon.
const REMEMBER_MS = 60_000;

export class Identifier {
  readonly #remembered = new WeakMap<Socket, Remembered>();
  // Random per process: the digests cannot be compared with anything outside this process.
  readonly #digestKey = randomBytes(32);

  constructor(private readonly pseudonymizer: Pseudonymizer) {}

  identify(runtime: Runtime, socket: Socket, rawHeaders: readonly string[], now: number): IdentifyResult | Promise<IdentifyResult> {
    const authHeader = runtime.htpasswd === undefined ? undefined : rawHeader(rawHeaders, 'proxy-authorization');
    const trusted = runtime.trustedHeader === undefined ? undefined : rawHeader(rawHeaders, runtime.trustedHeader.name);
    const memo = this.#remembered.get(socket);
    if (memo !== undefined && memo.runtime === runtime && memo.until > now && trusted === undefined) {
      if (authHeader === undefined || (memo.credentialDigest !== undefined && memo.credentialDigest === this.#digest(authHeader))) {
        return { ok: true, identity: memo.identity };
      }
    }
    const clientIp = socket.remoteAddress ?? '';
    if (authHeader !== undefined && runtime.htpasswd !== undefined) return this.#checkCredentials(runtime, socket, authHeader, clientIp, now);
    if (trusted !== undefined && runtime.trustedHeader !== undefined && runtime.trustedHeader.from.has(clientIp) && trusted.trim() !== '') {
      // Not remembered: the upstream that sends it may multiplex several people on one connection.
      return { ok: true, identity: this.#named(runtime, trusted.trim(), clientIp) };
    }
    if (runtime.authRequired) return { ok: false, reason: 'auth-required' };
    const identity: Identity = {
      pseudonym: this.pseudonymizer.of(`ip:${clientIp}`),
      formerPseudonym: this.pseudonymizer.formerOf(`ip:${clientIp}`),
      group: runtime.policy.groupFor({ clientIp }),
      authenticated: false,
    };
    this.#remembered.set(socket, { runtime, identity, credentialDigest: undefined, until: now + REMEMBER_MS });
    return { ok: true, identity };
  }

  /** Forget what a connection proved (tests; or after a reload that changed the users). */
  forget(socket: Socket): void {
    this.#remembered.delete(socket);
  }

  async #checkCredentials(runtime: Runtime, socket: Socket, header: string, clientIp: string, now: number): Promise<IdentifyResult> {
    const credentials = parseBasicProxyAuthorization(header);
    if (credentials === undefined || runtime.htpasswd === undefined) return { ok: false, reason: 'auth-failed' };
    const valid = await runtime.htpasswd.verify(credentials.user, credentials.password);
    if (!valid) return { ok: false, reason: 'auth-failed' };
    const identity = this.#named(runtime, credentials.user, clientIp);
    this.#remembered.set(socket, { runtime, identity, credentialDigest: this.#digest(header), until: now + REMEMBER_MS });
    return { ok: true, identity };
  }

  #named(runtime: Runtime, user: string, clientIp: string): Identity {
    // The name is used for the group and the pseudonym here, then goes out of scope.
    const subject = `user:${user}`;
    return { pseudonym: this.pseudonymizer.of(subject), formerPseudonym: this.pseudonymizer.formerOf(subject), group: runtime.policy.groupFor({ user, clientIp }), authenticated: true };
  }

  #digest(header: string): string {
    return createHmac('sha256', this.#digestKey).update(header).digest('base64');
  }
}
