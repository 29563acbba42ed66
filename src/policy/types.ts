/**
 * The policy engine's public types. Every other part of Leeway (proxy, pages, accounting,
 * metrics) talks to the policy through these, so they change rarely and on purpose.
 *
 * Flow: YAML files → (load, validate, compile) → CompiledPolicy → decide(facts, policy, now, usage) → Decision.
 */

/** The actions a rule can take. `quota` resolves to `allow` or to its used-up action at decide time. */
export type ActionKind = 'allow' | 'coach' | 'suggest' | 'quota' | 'readonly' | 'block';

/** An internal tool offered instead of a public platform (the `suggest` action). */
export interface Alternative {
  readonly name: string;
  readonly url: string;
}

/** What the proxy must do, with its parameters. A discriminated union on `kind`. */
export type EffectiveAction =
  | { readonly kind: 'allow' }
  | {
      readonly kind: 'coach';
      /** How long a Continue lasts for this person and site, in minutes. */
      readonly continueMinutes: number;
      /** Ask "What is this visit for?" on the page. */
      readonly purposeQuestion: boolean;
    }
  | {
      readonly kind: 'suggest';
      readonly alternative: Alternative;
      readonly continueMinutes: number;
      readonly purposeQuestion: boolean;
    }
  | { readonly kind: 'readonly' }
  | { readonly kind: 'block'; readonly reason: string };

/** The actions a `quota` may take once the day's minutes are used up. */
export type ExhaustedAction = Exclude<EffectiveAction, { kind: 'allow' }>;

export type QuotaScopeKind = 'category' | 'site';

/** Quota bookkeeping attached to a decision made by a `quota` rule. */
export interface QuotaState {
  readonly scope: { readonly kind: QuotaScopeKind; readonly name: string };
  readonly minutesPerDay: number;
  readonly minutesUsed: number;
  readonly minutesLeft: number;
  readonly exhausted: boolean;
}

/**
 * Everything known about one request when the decision is made. Host is the only
 * mandatory fact; `method` and `path` are absent for a CONNECT that is not (yet) intercepted.
 */
export interface RequestFacts {
  /** Host name or IP literal as sent by the client; decide() normalises it (case, trailing dot, IDN). */
  readonly host: string;
  readonly port?: number;
  /** Upper-case HTTP method, when known. */
  readonly method?: string;
  /** URL path (no query), when known. */
  readonly path?: string;
  /** The requester's group, resolved once by the identify stage with CompiledPolicy.groupFor(). */
  readonly group?: string;
}

/** Minutes already used today by the requester, read by `quota` rules. Must be a pure lookup. */
export interface UsageView {
  minutesUsedToday(scope: { kind: QuotaScopeKind; name: string }): number;
}

export const NO_USAGE: UsageView = Object.freeze({ minutesUsedToday: () => 0 });

/** Why one rule did or did not apply, for `leeway explain`. */
export interface RuleTrace {
  readonly ruleId: string;
  readonly matched: boolean;
  /** In words, e.g. "schedule work-hours is not active on Thu 12:30 (Europe/Paris)". */
  readonly reason: string;
  /** True when the rule was skipped only because method or path were unknown. */
  readonly needsInspection?: boolean;
}

export interface Decision {
  readonly action: EffectiveAction;
  /** The action written in the rule (`quota` stays `quota` here while `action` is what applies). */
  readonly ruleAction: ActionKind;
  /** The matching rule's id, or `default`. */
  readonly ruleId: string;
  /** Human text shown on pages. */
  readonly description: string;
  readonly category: string | undefined;
  readonly site: string | undefined;
  readonly quota: QuotaState | undefined;
  /**
   * True when the decision depends on the method or path: either a rule that needs them was
   * skipped because they were unknown, or the action (readonly) is enforced per request.
   * The proxy intercepts a CONNECT when this is true (or a page is needed) and interception is allowed.
   */
  readonly needsInspection: boolean;
  /** One entry per rule evaluated, in order, the last being the one that matched (absent for default). */
  readonly trace: readonly RuleTrace[];
}

export type AccessLogMode = 'aggregate-only' | 'anonymous' | 'pseudonymous';

/** Proxy-level settings (the `settings.proxy` section); defaults applied at compile time. */
export interface ProxySettings {
  /** Client networks allowed to use the proxy (CIDR). Default: loopback only. */
  readonly clients: readonly string[];
  /** Ports a CONNECT may reach. Default [443]. */
  readonly connectPorts: readonly number[];
  readonly auth: {
    /** Path to an htpasswd file (bcrypt entries), relative to the policy file that names it. */
    readonly htpasswd: string | undefined;
    /** When true, a client without valid credentials gets 407. */
    readonly required: boolean;
    readonly realm: string;
  };
  /** A header carrying an authenticated user name, trusted only from these upstream addresses. */
  readonly trustedHeader: { readonly name: string; readonly from: readonly string[] } | undefined;
  /** Addresses the proxy may connect to after resolving a host. Deny wins over allow. */
  readonly egress: { readonly allow: readonly string[]; readonly deny: readonly string[] };
  /** Static host → address map consulted before DNS (tests, split-horizon). */
  readonly hosts: Readonly<Record<string, string>>;
  /** Hosts and suffixes the PAC file sends DIRECT (intranet). */
  readonly pacBypass: readonly string[];
  readonly timeouts: {
    /** Client must send complete request headers within this many ms. */
    readonly headersMs: number;
    /** Idle client or tunnel connection closed after this many ms. */
    readonly idleMs: number;
    /** Origin must answer (connect + response headers) within this many ms. */
    readonly upstreamMs: number;
    /** Grace period for draining on SIGTERM. */
    readonly drainMs: number;
  };
}

export interface TlsSettings {
  /** Paths to the interception CA (relative to the policy file); interception needs both. */
  readonly caCert: string | undefined;
  readonly caKey: string | undefined;
  /** Extra PEM bundle trusted for upstream verification, besides the system roots. */
  readonly extraCaBundle: string | undefined;
  readonly certCacheSize: number;
}

export interface Settings {
  /** IANA time zone for schedules, quotas and the daily rollover. Default: the machine's zone. */
  readonly timeZone: string;
  readonly anonymity: { readonly minGroupSize: number };
  readonly interception: {
    readonly enabled: boolean;
    /** Categories never intercepted. Default [finance, health]. */
    readonly doNotInspect: readonly string[];
  };
  readonly accessLog: AccessLogMode;
  readonly proxy: ProxySettings;
  readonly tls: TlsSettings;
}

/** What the policy says a host is. */
export interface Classification {
  readonly category: string | undefined;
  readonly site: string | undefined;
}

export interface PolicyStats {
  readonly files: number;
  readonly categories: number;
  readonly domains: number;
  readonly rules: number;
}

/** The immutable result of loading a policy folder. Built once; shared by every request. */
export interface CompiledPolicy {
  readonly settings: Settings;
  /** The files merged into this policy, in load order. */
  readonly files: readonly string[];
  /** Stable digest of the policy's content, for `leeway_policy_info{hash}`. */
  readonly hash: string;
  readonly stats: PolicyStats;
  /** Bounded label sets for metrics. */
  readonly categoryNames: readonly string[];
  readonly siteNames: readonly string[];
  readonly groupNames: readonly string[];
  /** Each category's kind (default other), for the "share of leisure time" headline. */
  readonly categoryKinds: Readonly<Record<string, 'leisure' | 'business' | 'other'>>;
  /** Rule ids and descriptions in evaluation order (for docs and the privacy page). */
  readonly ruleSummaries: readonly { readonly id: string; readonly description: string; readonly action: ActionKind }[];
  classify(host: string): Classification;
  /**
   * The requester's group. Precedence: a group listing the user name wins; else the group whose
   * network is the most specific (longest prefix) match for the client address; else undefined.
   */
  groupFor(who: { readonly user?: string; readonly clientIp?: string }): string | undefined;
  /** Is this host in a do-not-inspect category? */
  isDoNotInspect(host: string): boolean;
}
